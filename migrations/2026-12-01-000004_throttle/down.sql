DROP TABLE rate_limits;
DROP TABLE login_throttle;
