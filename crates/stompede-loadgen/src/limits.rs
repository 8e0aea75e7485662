//! The open-files limit: a run holds one socket per connection, often more than the default 1024.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in force
/// (`None`: unlimited). Failure to raise is not an error here: the caller compares the result
/// with what it needs.
#[cfg(unix)]
pub(crate) fn raise_open_files() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit cannot be the soft one for files (Linux caps it at
    // fs.nr_open, 1 Mi by default), so aim there.
    let target = limit.maximum.unwrap_or(1 << 20);
    match limit.current {
        Some(current) if current < target => {
            let raised = Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => Some(target),
                Err(_) => Some(current),
            }
        }
        current => current,
    }
}

/// No such limit to raise off Unix.
#[cfg(not(unix))]
pub(crate) fn raise_open_files() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_idempotent() {
        let first = raise_open_files();
        assert_eq!(raise_open_files(), first);
    }
}
