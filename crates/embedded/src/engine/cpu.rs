//! How many threads llama.cpp should use.

use std::collections::BTreeSet;

/// The number of physical cores this process may run on: one llama.cpp thread per core is
/// fastest (a second thread on a hyper-thread sibling competes for the same vector units).
/// Falls back to the available parallelism when the topology cannot be read.
pub fn physical_cores() -> u32 {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = linux_physical_cores().unwrap_or(available);
    u32::try_from(cores.clamp(1, available)).unwrap_or(1)
}

/// Distinct (package, core) pairs among the online CPUs, from sysfs.
fn linux_physical_cores() -> Option<usize> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    let mut cores = BTreeSet::new();
    for cpu in parse_cpu_list(online.trim())? {
        let topology = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |name: &str| std::fs::read_to_string(format!("{topology}/{name}")).ok();
        let package = read("physical_package_id")?;
        let core = read("core_id")?;
        cores.insert((package.trim().to_owned(), core.trim().to_owned()));
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// `0-3,6,8-9` → `[0, 1, 2, 3, 6, 8, 9]`.
fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<u32>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn physical_cores_is_at_least_one_and_at_most_the_available_cpus() {
        let cores = physical_cores() as usize;
        assert!(cores >= 1);
        assert!(cores <= std::thread::available_parallelism().unwrap().get());
    }
}
