//! The machine a measurement was made on: CPU model, logical cores, whether
//! it runs under a hypervisor, and the TSC's rate.
//!
//! Why: a latency figure means nothing without its machine. The README's
//! figures were measured on a 2-core VM on an AMD EPYC (Zen 4) host; a VM
//! of the same size on an Intel Xeon host (TSC 2.0 GHz) read about twice
//! them (docs/performance.md). So `mmbot bench` prints and records the host
//! with every run, as do a paced replay and every report (`perf.clock.host`),
//! and runs are compared only when their hosts match. Read once, off the hot
//! path.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// What `mmbot bench` and every run's report say of the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The CPU's model name (`/proc/cpuinfo`), or "unknown".
    pub cpu: String,
    /// The machine's logical cores (`processor` entries in `/proc/cpuinfo`;
    /// without it, those this process may run on).
    pub cores: usize,
    /// The CPU reports a hypervisor: a VM, whose vCPUs may share physical
    /// cores and caches with other guests, so its speed can drift.
    pub hypervisor: bool,
    /// The TSC's measured rate, GHz (`None` when the clock is not the TSC).
    pub tsc_ghz: Option<f64>,
}

impl Host {
    /// This machine, with the TSC rate the calibrated clock measured.
    /// `/proc/cpuinfo` is read once per process: a sweep builds a report per
    /// backtest, and on a many-core machine that file is large.
    pub fn read(tsc_ghz: Option<f64>) -> Self {
        static MACHINE: OnceLock<Host> = OnceLock::new();
        let machine = MACHINE.get_or_init(|| {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            // Only the fallback: a thread already pinned sees one core here.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Self::from_cpuinfo(&cpuinfo, cores, None)
        });
        Self { tsc_ghz: rounded_ghz(tsc_ghz), ..machine.clone() }
    }

    /// From the text of `/proc/cpuinfo` (empty when there is none);
    /// `cores` is used when it lists no `processor`.
    pub fn from_cpuinfo(cpuinfo: &str, cores: usize, tsc_ghz: Option<f64>) -> Self {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        // x86 names the model in `model name`; ARM kernels often name no
        // model, some give the board as `Hardware`.
        let cpu = field("model name").or_else(|| field("Hardware")).filter(|s| !s.is_empty());
        let listed =
            cpuinfo.lines().filter(|l| l.split_once(':').is_some_and(|(k, _)| k.trim() == "processor")).count();
        let hypervisor = field("flags").is_some_and(|f| f.split_whitespace().any(|x| x == "hypervisor"));
        Self {
            cpu: cpu.unwrap_or_else(|| "unknown".into()),
            cores: if listed > 0 { listed } else { cores },
            hypervisor,
            tsc_ghz: rounded_ghz(tsc_ghz),
        }
    }

    /// One line: `Intel(R) Xeon(R) Processor, 2 logical cores, under a
    /// hypervisor, TSC 2.00 GHz`.
    pub fn line(&self) -> String {
        let mut s = format!("{}, {} logical core{}", self.cpu, self.cores, if self.cores == 1 { "" } else { "s" });
        if self.hypervisor {
            s.push_str(", under a hypervisor");
        }
        if let Some(g) = self.tsc_ghz {
            s.push_str(&format!(", TSC {g:.2} GHz"));
        }
        s
    }
}

/// A measured rate to two decimals; `None` unless finite and positive.
fn rounded_ghz(ghz: Option<f64>) -> Option<f64> {
    ghz.filter(|g| g.is_finite() && *g > 0.0).map(|g| (g * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON_VM: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\
        flags\t\t: fpu vme tsc hypervisor lahf_lm\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";

    #[test]
    fn a_vm_names_its_cpu_and_its_hypervisor() {
        // Two `processor` entries: two cores, whatever this thread is pinned to.
        let h = Host::from_cpuinfo(XEON_VM, 1, Some(1.999_6));
        assert_eq!(h.cpu, "Intel(R) Xeon(R) Processor");
        assert!(h.hypervisor);
        assert_eq!(h.tsc_ghz, Some(2.0));
        assert_eq!(h.line(), "Intel(R) Xeon(R) Processor, 2 logical cores, under a hypervisor, TSC 2.00 GHz");
    }

    #[test]
    fn bare_metal_and_unknown_machines_say_so() {
        let metal = "model name : AMD EPYC 9B14\nflags : fpu tsc constant_tsc\n";
        let h = Host::from_cpuinfo(metal, 1, None);
        assert_eq!((h.cpu.as_str(), h.hypervisor, h.tsc_ghz), ("AMD EPYC 9B14", false, None));
        assert_eq!(h.line(), "AMD EPYC 9B14, 1 logical core");
        // A flag named like it, but not it.
        assert!(!Host::from_cpuinfo("flags : hypervisor_x\n", 1, None).hypervisor);
        let none = Host::from_cpuinfo("", 4, Some(f64::NAN));
        assert_eq!((none.cpu.as_str(), none.tsc_ghz), ("unknown", None));
        assert_eq!(Host::from_cpuinfo("Hardware : BCM2835\n", 4, None).cpu, "BCM2835");
    }

    #[test]
    fn this_machine_is_read_once_and_each_call_keeps_its_own_rate() {
        let (a, b) = (Host::read(Some(2.0)), Host::read(None));
        assert_eq!((a.tsc_ghz, b.tsc_ghz), (Some(2.0), None));
        assert_eq!((&a.cpu, a.cores, a.hypervisor), (&b.cpu, b.cores, b.hypervisor));
        assert!(a.cores >= 1 && !a.cpu.is_empty());
    }
}
