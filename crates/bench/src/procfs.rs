//! What the bench reads from `/proc`: a server's resident memory, and this process's limit
//! on open files (which decides how many connections one worker process may hold).

use std::io;

/// The resident set size of process `pid`, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_kib_field(&status, "VmRSS:")
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// The soft limit on open files of this process (`Max open files` in `/proc/self/limits`),
/// or `None` if it cannot be read or is unlimited.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parse_kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss() {
        let s = "Name:\tmagpie\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_kib_field(s, "VmRSS:"), Some(2048));
        assert_eq!(parse_kib_field(s, "VmSwap:"), None);
    }

    #[test]
    fn reads_own_process() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(open_files_limit().unwrap_or(1) > 0);
    }
}
