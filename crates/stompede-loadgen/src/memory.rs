//! Resident memory of a process (the server's, given its PID, or the tool's own), from
//! `/proc/PID/status`, so that a script can compute memory per session.

/// Resident and peak resident memory of one process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resident {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the most it has been resident.
    pub(crate) peak_kib: Option<u64>,
}

/// The resident memory of process `pid` (`None`: this process); `None` where there is no
/// procfs, no such process, or its status cannot be parsed.
pub(crate) fn resident(pid: Option<u32>) -> Option<Resident> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    parse_status(&std::fs::read_to_string(path).ok()?)
}

/// `VmRSS` and `VmHWM` from the text of a `/proc/PID/status` file.
fn parse_status(status: &str) -> Option<Resident> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?.trim();
            let number = value.strip_suffix("kB")?.trim();
            number.parse::<u64>().ok()
        })
    };
    Some(Resident {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_parse() {
        let status =
            "Name:\tstompede\nVmPeak:\t  99 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Resident {
                rss_kib: 2048,
                peak_kib: Some(12345)
            })
        );
        assert_eq!(
            parse_status("VmRSS: 7 kB\n"),
            Some(Resident {
                rss_kib: 7,
                peak_kib: None
            })
        );
        for bad in [
            "",
            "VmRSS:\n",
            "VmRSS: 12 MB\n",
            "VmRSS: -1 kB\n",
            "VmRSSx: 1 kB\n",
            "VmRSS: 99999999999999999999999 kB\n",
        ] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_resident_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident(None).is_some_and(|r| r.rss_kib > 0));
            assert!(resident(Some(std::process::id())).is_some());
        }
    }
}
