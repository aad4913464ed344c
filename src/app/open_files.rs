//! Raises the soft limit on open files to the hard limit at startup.
//!
//! Every connection is a file descriptor. Service managers often start
//! processes with a soft limit of 1024 (systemd, containerd 2) under a much
//! higher hard limit; at the soft limit `accept` fails with EMFILE and new
//! clients, health checks included, wait until idle connections time out.
//! Raising the soft limit needs no privilege (Go and nginx do the same).

/// Linux's default `fs.nr_open`: the most a process may open.
#[cfg(target_os = "linux")]
const NR_OPEN_DEFAULT: libc::rlim_t = 1 << 20;

/// The soft limit before and after, when it was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// Soft limit inherited from the parent.
    pub from: u64,
    /// Soft limit now (the hard limit).
    pub to: u64,
}

/// Sets the soft `RLIMIT_NOFILE` to the hard one. `Ok(None)` when it was
/// already there (or on platforms where this is not done).
pub fn raise_to_hard_limit() -> std::io::Result<Option<Raised>> {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read or write `limit`.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // An unlimited hard limit is still capped by fs.nr_open (1 Mi by
        // default), and asking for more fails.
        let target = if limit.rlim_max == libc::RLIM_INFINITY {
            NR_OPEN_DEFAULT
        } else {
            limit.rlim_max
        };
        if limit.rlim_cur >= target {
            return Ok(None);
        }
        let from = limit.rlim_cur;
        limit.rlim_cur = target;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(Raised { from, to: target }))
    }
    #[cfg(not(target_os = "linux"))]
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afterwards_the_soft_limit_is_the_hard_limit() {
        raise_to_hard_limit().unwrap();

        assert_eq!(raise_to_hard_limit().unwrap(), None);
    }
}
