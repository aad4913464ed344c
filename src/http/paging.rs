//! Keyset paging shared by the listings (`/api/admin/users`, the event
//! listings): `limit` (1–200, default 50) and an opaque `after` cursor,
//! each given at most once; every bad field is reported at once as 422.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult, FieldErrors};

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 200;

/// A keyset position: the last row's `created_at` and id.
pub type Cursor = (DateTime<Utc>, Uuid);

/// A query string as actix parses it into `web::Query<Vec<(String, String)>>`.
pub type QueryPairs = [(String, String)];

/// Every value given for `name`.
pub fn values<'a>(query: &'a QueryPairs, name: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .collect()
}

/// Validates `limit` and `after`, adding what is wrong to `fields` (so a
/// listing with more parameters reports them all at once); `None` when
/// either is bad.
pub fn parse_page(query: &QueryPairs, fields: &mut FieldErrors) -> Option<(i64, Option<Cursor>)> {
    let limit = match values(query, "limit").as_slice() {
        [] => Some(DEFAULT_LIMIT),
        [raw] => parse_limit(raw),
        _ => None,
    };
    if limit.is_none() {
        fields.insert(
            "limit".into(),
            format!("must be one integer from 1 to {MAX_LIMIT}"),
        );
    }
    let after = match values(query, "after").as_slice() {
        [] => Some(None),
        [raw] => decode_cursor(raw).map(Some),
        _ => None,
    };
    if after.is_none() {
        fields.insert(
            "after".into(),
            "must be the `next` cursor of a previous page".into(),
        );
    }
    Some((limit?, after?))
}

/// Validates `limit` and `after` of a listing with no other parameters.
pub fn parse_page_query(query: &QueryPairs) -> AppResult<(i64, Option<Cursor>)> {
    let mut fields = FieldErrors::new();
    parse_page(query, &mut fields).ok_or(AppError::Validation(fields))
}

/// Cuts a page read with `limit + 1` rows down to `limit` and returns the
/// cursor of the next page (`None` on the last page).
pub fn finish_page<T>(rows: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|row| {
        let (created_at, id) = key(row);
        encode_cursor(created_at, id)
    })
}

/// A limit of plain decimal digits within 1..=200.
fn parse_limit(raw: &str) -> Option<i64> {
    if raw.is_empty() || raw.len() > 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
}

/// An opaque cursor: base64url of `<created_at µs>.<id>`.
pub fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", created_at.timestamp_micros(), id))
}

/// The earliest instant PostgreSQL's `timestamptz` holds (4714-11-24 BC),
/// in microseconds since the Unix epoch. chrono's own limit (year 262143)
/// is below PostgreSQL's latest, so only the lower end needs a check.
const POSTGRES_MIN_MICROS: i64 = -210_866_803_200_000_000;

/// Decodes a cursor; `None` for anything [`encode_cursor`] cannot have
/// written, including instants PostgreSQL cannot compare against (which
/// would otherwise fail the query with a 500).
pub fn decode_cursor(raw: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('.')?;
    let micros: i64 = micros.parse().ok().filter(|m| *m >= POSTGRES_MIN_MICROS)?;
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros)?;
    Some((created_at, Uuid::parse_str(id).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("garbage!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.nope")), None);
    }

    #[test]
    fn cursors_outside_postgres_time_range_are_refused() {
        let id = Uuid::nil();
        let cursor = |micros: i64| URL_SAFE_NO_PAD.encode(format!("{micros}.{id}"));
        assert!(decode_cursor(&cursor(POSTGRES_MIN_MICROS)).is_some());
        assert_eq!(decode_cursor(&cursor(POSTGRES_MIN_MICROS - 1)), None);
        assert_eq!(decode_cursor(&cursor(i64::MIN)), None);
        assert_eq!(decode_cursor(&cursor(i64::MAX)), None);
    }

    #[test]
    fn limits_outside_1_to_200_are_refused() {
        assert_eq!(parse_limit("200"), Some(200));
        assert_eq!(parse_limit("1"), Some(1));
        for bad in ["0", "201", "-1", "+5", "ten", "", "0050", " 5"] {
            assert_eq!(parse_limit(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported_and_empty_after_is_bad() {
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(parse_page_query(&query(&[])).unwrap(), (50, None));
        match parse_page_query(&query(&[("limit", "0"), ("after", "zz")])) {
            Err(AppError::Validation(fields)) => {
                assert!(fields.contains_key("limit") && fields.contains_key("after"));
            }
            other => panic!("{other:?}"),
        }
        for bad in [vec![("after", "")], vec![("limit", "5"), ("limit", "6")]] {
            assert!(parse_page_query(&query(&bad)).is_err());
        }
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_past_the_last() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let mut rows = ids.clone();
        let next = finish_page(&mut rows, 2, |id| (at, *id));
        assert_eq!(rows, ids[..2]);
        assert_eq!(next.and_then(|c| decode_cursor(&c)), Some((at, ids[1])));
        let mut rows = ids.clone();
        assert_eq!(finish_page(&mut rows, 3, |id| (at, *id)), None);
        assert_eq!(rows.len(), 3);
    }
}
