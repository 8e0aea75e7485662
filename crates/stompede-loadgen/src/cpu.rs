//! CPU time of this process, to tell whether the load tool itself was the bottleneck: a
//! throughput figure measured while the tool used its whole core is a lower bound for the server.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{self, Instant};

use crate::stats::Stats;

/// User plus system CPU time of the whole process so far (all threads), from `/proc/self/stat`;
/// `None` where there is no procfs or it cannot be parsed.
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    let per_second = clock_ticks_per_second();
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// The tool's CPU use over the measured window, in cores (1.0: one core busy all the time);
/// `None` without procfs. Ends at the end of the window.
pub(crate) async fn cpu_over_window(stats: Arc<Stats>) -> Option<f64> {
    let (from, until) = stats.window();
    time::sleep_until(Instant::from_std(stats.instant_at(from))).await;
    let (cpu_start, wall_start) = (process_cpu_time()?, Instant::now());
    time::sleep_until(Instant::from_std(stats.instant_at(until))).await;
    let cpu = process_cpu_time()?.saturating_sub(cpu_start);
    Some(cpu.as_secs_f64() / wall_start.elapsed().as_secs_f64().max(1e-9))
}

/// What [`cpu_over_window`] (running as `sampler`) measured, if the window is over; a run that
/// ended before its window did has no figure.
pub(crate) async fn window_cpu(stats: &Stats, sampler: JoinHandle<Option<f64>>) -> Option<f64> {
    let (_, until) = stats.window();
    if stats.now_ns() >= until {
        sampler.await.ok().flatten()
    } else {
        sampler.abort();
        None
    }
}

/// `utime + stime` in clock ticks from a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses, so fields are counted after the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(unix)]
fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

#[cfg(not(unix))]
fn clock_ticks_per_second() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "1234 (we ird) (name)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 \
                    1 0 100 1000000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time().is_some());
        }
    }
}
