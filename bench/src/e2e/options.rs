//! Command-line options of the end-to-end benchmark.

use super::measure::{Cpus, TrafgenMode};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
e2e: vswitchd against the Linux bridge, end to end, on veths between two
network namespaces. Needs root; removes everything it creates.

usage: e2e [--quick] [options]

  --quick             short intervals and 2 repetitions (about 1 minute)
  --reps N            repetitions of the whole comparison (default 3; medians)
  --warmup SECS       traffic before each UDP interval (default 1)
  --udp-secs SECS     UDP measuring interval (default 5)
  --tcp-secs SECS     iperf3 duration (default 10)
  --ping-count N      pings at 100/s (default 500)
  --idle-secs SECS    daemon idle interval (default 10)
  --trafgen-modes L   comma list of ring,sendto (default both; the better
                      one's delivered rate counts, per switch and repetition)
  --wait-quiet SECS   before each repetition, wait up to SECS for the CPUs
                      to be idle (others' builds and tests; default 60,
                      10 with --quick)
  --gen-cpu N         CPU for trafgen, iperf3 and ping (default 0)
  --switch-cpu N      vswitchd's poll thread / the bridge's RPS CPU (default 1)
  --only WHICH        vswitch or bridge (no comparison, for debugging)
  --vswitchd-arg ARG  extra argument for vswitchd (repeat for several),
                      e.g. --vswitchd-arg=--pmd-spin=200
  --bin-dir DIR       where vswitchd and vswctl are (default: this binary's)
  --json FILE         raw results (default: <target>/e2e-results.json)
  --perf DIR          also record a system-wide cpu-clock profile of the
                      first UDP interval of each switch into DIR (slows it)
  --no-install        do not apt-get install missing tools, just say so
  -h, --help          this text
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Vswitch,
    Bridge,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub reps: usize,
    pub warmup: Duration,
    pub udp: Duration,
    pub tcp: Duration,
    pub ping_count: usize,
    pub idle: Duration,
    pub wait_quiet: Duration,
    pub modes: Vec<TrafgenMode>,
    pub cpus: Cpus,
    pub only: Option<Only>,
    pub bin_dir: PathBuf,
    pub vswitchd_args: Vec<String>,
    pub json: PathBuf,
    pub perf_dir: Option<PathBuf>,
    pub install: bool,
}

/// `Ok(None)` means: help was asked for.
pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut o = Options {
        quick,
        reps: if quick { 2 } else { 3 },
        warmup: Duration::from_secs_f64(if quick { 0.5 } else { 1.0 }),
        udp: Duration::from_secs(if quick { 2 } else { 5 }),
        tcp: Duration::from_secs(if quick { 3 } else { 10 }),
        ping_count: if quick { 200 } else { 500 },
        idle: Duration::from_secs(if quick { 3 } else { 10 }),
        wait_quiet: Duration::from_secs(if quick { 10 } else { 60 }),
        modes: vec![TrafgenMode::Ring, TrafgenMode::Sendto],
        cpus: Cpus { gen: 0, switch: 1 },
        only: None,
        json: exe_dir
            .parent()
            .unwrap_or(&exe_dir)
            .join("e2e-results.json"),
        bin_dir: exe_dir,
        vswitchd_args: Vec::new(),
        perf_dir: None,
        install: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => {}
            "--no-install" => o.install = false,
            "--reps" => o.reps = num(&val(a)?, a)?.max(1.0) as usize,
            "--warmup" => o.warmup = secs(&val(a)?, a)?,
            "--udp-secs" => o.udp = secs(&val(a)?, a)?,
            "--tcp-secs" => o.tcp = secs(&val(a)?, a)?,
            "--idle-secs" => o.idle = secs(&val(a)?, a)?,
            "--wait-quiet" => o.wait_quiet = Duration::from_secs_f64(num(&val(a)?, a)?.min(3600.0)),
            "--ping-count" => o.ping_count = num(&val(a)?, a)?.clamp(1.0, 100_000.0) as usize,
            "--gen-cpu" => o.cpus.gen = num(&val(a)?, a)? as usize,
            "--switch-cpu" => o.cpus.switch = num(&val(a)?, a)? as usize,
            "--bin-dir" => o.bin_dir = PathBuf::from(val(a)?),
            "--vswitchd-arg" => o.vswitchd_args.push(val(a)?),
            x if x.starts_with("--vswitchd-arg=") => o
                .vswitchd_args
                .push(x["--vswitchd-arg=".len()..].to_string()),
            "--json" => o.json = PathBuf::from(val(a)?),
            "--perf" => o.perf_dir = Some(PathBuf::from(val(a)?)),
            "--only" => {
                o.only = Some(match val(a)?.as_str() {
                    "vswitch" => Only::Vswitch,
                    "bridge" => Only::Bridge,
                    x => return Err(format!("--only {x}: expected vswitch or bridge")),
                })
            }
            "--trafgen-modes" => {
                o.modes = val(a)?
                    .split(',')
                    .map(|m| {
                        TrafgenMode::parse(m.trim()).ok_or_else(|| {
                            format!("--trafgen-modes: unknown mode \"{m}\" (ring, sendto)")
                        })
                    })
                    .collect::<Result<_, _>>()?;
                if o.modes.is_empty() {
                    return Err("--trafgen-modes: give at least one mode".into());
                }
            }
            x => return Err(format!("unknown argument \"{x}\" (see --help)")),
        }
    }
    if o.cpus.gen == o.cpus.switch {
        return Err("--gen-cpu and --switch-cpu must differ".into());
    }
    Ok(Some(o))
}

fn num(s: &str, name: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{name} {s}: expected a non-negative number"))
}

/// Seconds, at most an hour (every interval is bounded).
fn secs(s: &str, name: &str) -> Result<Duration, String> {
    let v = num(s, name)?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{name} {s}: expected 0.1 to 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_quick() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!((o.reps, o.ping_count), (3, 500));
        let q = parse(&args("--udp-secs 3 --quick")).unwrap().unwrap();
        assert_eq!(q.reps, 2);
        assert_eq!(q.udp, Duration::from_secs(3)); // explicit beats --quick
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&args("--reps")).is_err());
        assert!(parse(&args("--udp-secs x")).is_err());
        assert!(parse(&args("--trafgen-modes ring,foo")).is_err());
        assert!(parse(&args("--gen-cpu 1")).is_err());
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("--help")).unwrap().is_none());
        let o = parse(&args("--vswitchd-arg=--pmd-spin=0 --vswitchd-arg -v"))
            .unwrap()
            .unwrap();
        assert_eq!(o.vswitchd_args, vec!["--pmd-spin=0", "-v"]);
    }
}
