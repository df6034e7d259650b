//! How systemd supervises the instances, gunicorn's arbiter's part:
//! `Type=notify` units counted ready when the app says so, a watchdog that
//! restarts an instance that stops answering it, recycling after a time,
//! and memory bounds.

use super::super::checks::*;
use super::super::context::Supervision;
use super::super::settings::Settings;

/// The longest watchdog period, and the shortest recycling.
const WATCHDOG_MAX: u64 = 3600;
const RECYCLE_MIN: u64 = 10;
const RECYCLE_MAX: u64 = 366 * 86_400;

/// `notifies`: the package depends on a crate that speaks the notify
/// protocol, so `notify` defaults to on.
pub fn supervision(p: &mut Problems, s: &Settings, notifies: bool) -> Supervision {
    let notify = s.notify.unwrap_or(notifies);
    let watchdog_sec = match s.watchdog_sec {
        0 => 0,
        n @ 2..=WATCHDOG_MAX => n,
        n => {
            p.add(
                "watchdog-sec",
                &n.to_string(),
                format!(
                    "is 0 (off) or from 2 to {WATCHDOG_MAX} seconds (the app pings at half of it)"
                ),
            );
            0
        }
    };
    let recycle_sec = s
        .recycle_after
        .as_deref()
        .and_then(|text| duration(p, "recycle-after", text));
    let memory_high = s
        .memory_high
        .as_deref()
        .and_then(|text| memory(p, "memory-high", text));
    let memory_max = s
        .memory_max
        .as_deref()
        .and_then(|text| memory(p, "memory-max", text));
    if let (Some(high), Some(max)) = (&memory_high, &memory_max) {
        if high.1 == max.1 && high.0 > max.0 {
            p.add(
                "memory-high",
                &high.2,
                format!("is above `memory-max` ({}): the instance would be killed before it is throttled", max.2),
            );
        }
    }
    Supervision {
        notify,
        watchdog_sec: if notify { watchdog_sec } else { 0 },
        recycle_sec,
        // Up to a quarter more, drawn at each start: instances started
        // together part after their first recycling.
        recycle_spread_sec: recycle_sec.map_or(0, |s| s / 4),
        memory_high: memory_high.map(|m| m.2),
        memory_max: memory_max.map(|m| m.2),
    }
}

/// `90s`, `30m`, `24h`, `7d` in seconds, within the recycling bounds.
fn duration(p: &mut Problems, setting: &str, text: &str) -> Option<u64> {
    let value = number_with_unit(p, setting, text, &["s", "m", "h", "d"], "24h")?;
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = value[..digits].parse().ok()?;
    let seconds = n.saturating_mul(match &value[digits..] {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 1,
    });
    if !(RECYCLE_MIN..=RECYCLE_MAX).contains(&seconds) {
        p.add(setting, text, format!("is from {RECYCLE_MIN}s to 366d"));
        return None;
    }
    Some(seconds)
}

/// A systemd memory size: bytes with `K`, `M`, `G` or `T` (1024-based), or
/// a percentage of the machine's memory. Returns (value, is-percent, text)
/// so that two of a kind can be compared.
fn memory(p: &mut Problems, setting: &str, text: &str) -> Option<(f64, bool, String)> {
    let value = number_with_unit(p, setting, text, &["K", "M", "G", "T", "%"], "512M")?;
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let n: f64 = value[..digits].parse().ok()?;
    let unit = &value[digits..];
    let (amount, percent) = match unit {
        "%" => (n, true),
        "K" => (n * 1024.0, false),
        "M" => (n * 1024.0 * 1024.0, false),
        "G" => (n * 1024.0 * 1024.0 * 1024.0, false),
        _ => (n * 1024f64.powi(4), false),
    };
    let ok = if percent {
        (1.0..=100.0).contains(&amount)
    } else {
        amount >= 32.0 * 1024.0 * 1024.0
    };
    if !ok {
        p.add(
            setting,
            text,
            if percent {
                "is from 1% to 100% of the machine's memory"
            } else {
                "is at least 32M (less cannot start the app)"
            },
        );
        return None;
    }
    Some((amount, percent, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut Settings), notifies: bool) -> (Supervision, Vec<String>) {
        let mut s = Settings::default();
        edit(&mut s);
        let mut p = Problems::default();
        let sup = supervision(&mut p, &s, notifies);
        (sup, p.0)
    }

    #[test]
    fn defaults_follow_the_package() {
        let (sup, problems) = check(|_| {}, true);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(sup.notify);
        assert_eq!(sup.watchdog_sec, 10);
        assert_eq!(
            (sup.recycle_sec, sup.memory_high, sup.memory_max),
            (None, None, None)
        );
        // An app that does not speak the protocol gets Type=exec, no watchdog.
        let (sup, _) = check(|_| {}, false);
        assert!(!sup.notify);
        assert_eq!(sup.watchdog_sec, 0);
        let (sup, _) = check(|s| s.notify = Some(true), false);
        assert!(sup.notify);
    }

    #[test]
    fn recycling_and_memory_bounds_are_read() {
        let (sup, problems) = check(
            |s| {
                s.recycle_after = Some("24h".into());
                s.memory_high = Some("512M".into());
                s.memory_max = Some("1G".into());
            },
            true,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (sup.recycle_sec, sup.recycle_spread_sec),
            (Some(86_400), 21_600)
        );
        assert_eq!(sup.memory_high.as_deref(), Some("512M"));
        assert_eq!(sup.memory_max.as_deref(), Some("1G"));
    }

    #[test]
    fn odd_values_are_refused_naming_the_setting() {
        type Edit = fn(&mut Settings);
        let cases: [(&str, Edit, &str); 10] = [
            ("watchdog-sec", |s| s.watchdog_sec = 1, "from 2"),
            ("watchdog-sec", |s| s.watchdog_sec = 100_000, "to 3600"),
            (
                "recycle-after",
                |s| s.recycle_after = Some("5s".into()),
                "from 10s",
            ),
            (
                "recycle-after",
                |s| s.recycle_after = Some("400d".into()),
                "366d",
            ),
            (
                "recycle-after",
                |s| s.recycle_after = Some("1w".into()),
                "units",
            ),
            (
                "recycle-after",
                |s| s.recycle_after = Some("24h\nExecStart=/bin/sh".into()),
                "",
            ),
            (
                "memory-high",
                |s| s.memory_high = Some("1M".into()),
                "at least 32M",
            ),
            (
                "memory-max",
                |s| s.memory_max = Some("150%".into()),
                "to 100%",
            ),
            ("memory-max", |s| s.memory_max = Some("2GB".into()), "units"),
            (
                "memory-high",
                |s| {
                    s.memory_high = Some("2G".into());
                    s.memory_max = Some("1G".into());
                },
                "above `memory-max`",
            ),
        ];
        for (setting, edit, why) in cases {
            let (_, problems) = check(edit, true);
            assert!(
                problems.len() == 1
                    && problems[0].starts_with(&format!("`{setting}` = "))
                    && problems[0].contains(why),
                "{setting}: {problems:#?}"
            );
        }
    }
}
