-- The tokens of a session that still keep a sealed successor (at most the
-- newest spent one): each refresh clears them, and without this index that
-- UPDATE reads every token the session ever had (a chain grows by one per
-- refresh), e.g. 9.6 ms instead of 0.03 ms at 2,000 tokens.
CREATE INDEX refresh_tokens_sealed_successor_idx
    ON refresh_tokens (session_id)
    WHERE sealed_successor IS NOT NULL;
