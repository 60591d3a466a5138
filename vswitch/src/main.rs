//! vswitchd: the vswitch poll-mode switch daemon.

use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vswitch::datapath::pmd::IdlePolicy;
use vswitch::{config::Config, control::Control, daemon, db::Db, runtime::Runtime};

#[derive(Parser, Debug)]
#[command(name = "vswitchd", version, about = "vswitch poll-mode switch daemon")]
struct Args {
    /// Run directory: control socket, pid file (and log file with --detach).
    #[arg(long, default_value = vswitch::DEFAULT_RUNDIR)]
    rundir: PathBuf,
    /// Configuration database file. Default: /var/lib/vswitch/conf.db with
    /// the default --rundir, RUNDIR/conf.db with another one (so daemons
    /// side by side never share one by accident).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Run in the background; return once the control socket accepts.
    #[arg(long)]
    detach: bool,
    /// CPUs for poll threads, one thread per CPU (e.g. "1", "0,1", "0-3").
    /// Default: one thread on the last CPU. Given twice, the last one wins.
    #[arg(long, overrides_with = "pmd_cpus")]
    pmd_cpus: Option<String>,
    /// Longest idle sleep of a poll thread, in microseconds (a frame on a
    /// queue that can signal wakes it at once).
    #[arg(long, default_value_t = 1000)]
    pmd_sleep_max: u64,
    /// How long a poll thread keeps polling after the last frame before it
    /// sleeps, in microseconds. 0 sleeps at once.
    #[arg(long, default_value_t = 20_000)]
    pmd_spin: u64,
    /// Spin the whole --pmd-spin after every frame, however light the
    /// traffic (by default a thread that sees fewer than 2,000 batches a
    /// second spins 200 microseconds and then sleeps until a queue
    /// signals).
    #[arg(long)]
    pmd_spin_fixed: bool,
    /// Serve OpenMetrics (Prometheus) text at http://ADDR:PORT/metrics
    /// (off by default).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// Group of the control socket (a name or a number); the socket is
    /// mode 0660, so that group's members may use vswctl.
    #[arg(long, value_name = "NAME")]
    socket_group: Option<String>,
    /// Write the log to FILE (mode 0600; SIGHUP reopens it) instead of
    /// standard error. With --detach the default is RUNDIR/vswitchd.log.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
    /// Print the completion script for SHELL and exit (scripts/install.sh
    /// installs it).
    #[arg(long, value_name = "SHELL", hide = true)]
    print_completion: Option<clap_complete::Shell>,
    /// Print the vswitchd(8) manual page (roff) and exit.
    #[arg(long, hide = true)]
    print_man: bool,
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not a log level (error, warn, info, debug, trace)"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(shell) = args.print_completion {
        let mut cmd = Args::command();
        clap_complete::generate(shell, &mut cmd, "vswitchd", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if args.print_man {
        let page = clap_mangen::Man::new(Args::command()).section("8");
        return match page.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vswitchd: cannot write the manual page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("vswitchd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let cores: Vec<Option<usize>> = match &args.pmd_cpus {
        Some(list) => vswitch::parse_cpu_list(list)?
            .into_iter()
            .map(Some)
            .collect(),
        None => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            vec![Some(n - 1)]
        }
    };
    daemon::private_umask();
    let socket_gid = args
        .socket_group
        .as_deref()
        .map(daemon::group_id)
        .transpose()
        .map_err(|e| format!("--socket-group: {e}"))?;
    daemon::private_dir(&args.rundir, "run directory")?;
    let db_path = args.db.clone().unwrap_or_else(|| {
        if args.rundir == std::path::Path::new(vswitch::DEFAULT_RUNDIR) {
            PathBuf::from(vswitch::DEFAULT_DB)
        } else {
            args.rundir.join("conf.db")
        }
    });
    let db = Db::new(&db_path);
    daemon::private_dir(&db.dir(), "database directory")?;
    let log_path = args
        .log_file
        .clone()
        .unwrap_or_else(|| args.rundir.join("vswitchd.log"));
    let mut readiness = if args.detach {
        daemon::detach(&log_path).map_err(|e| format!("cannot detach: {e}"))?
    } else {
        if args.log_file.is_some() {
            daemon::reopen_log(&log_path)
                .map_err(|e| format!("--log-file {}: {e}", log_path.display()))?;
        }
        daemon::Readiness::none()
    };
    let logger = Box::new(daemon::Logger);
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(args.log_level);
    }

    let pid_path = args.rundir.join(vswitch::PIDFILE_NAME);
    let _pidfile =
        daemon::lock_pidfile(&pid_path).map_err(|e| format!("{}: {e}", pid_path.display()))?;
    let _db_lock = daemon::lock_db(&db_path)?;
    let mut cfg: Config = db.load().map_err(|e| {
        format!("{e}\n(vswitchd did not start and left the file as it is: fix it, or move it away to start empty)")
    })?;
    db.restrict_mode()
        .map_err(|e| format!("cannot make {} private: {e}", db_path.display()))?;
    let loaded = cfg.clone();
    // The kernel side agrees with the stored configuration again after a
    // crash mid-attach or mid-detach.
    let owner = vswitch::attach::orphans::owner(&args.rundir);
    vswitch::attach::orphans::remove(&cfg, &owner);
    let tap_journal = args.rundir.join(vswitch::attach::intents::FILE_NAME);
    vswitch::attach::intents::sweep(&tap_journal, &cfg);
    cfg.assign_ofports();
    if cfg != loaded {
        db.store(&cfg)
            .map_err(|e| format!("cannot update {}: {e}", db_path.display()))?;
    }
    let signals = daemon::signal_fd().map_err(|e| format!("cannot set up signals: {e}"))?;
    let idle = IdlePolicy {
        spin: Duration::from_micros(args.pmd_spin),
        sleep_max: Duration::from_micros(args.pmd_sleep_max),
        adaptive: !args.pmd_spin_fixed,
    };
    let mut rt =
        Runtime::new(&cores, idle).map_err(|e| format!("cannot start poll threads: {e}"))?;

    let sock_path = args.rundir.join(vswitch::SOCKET_NAME);
    let _ = std::fs::remove_file(&sock_path);
    let listener = mio::net::UnixListener::bind(&sock_path)
        .map_err(|e| format!("cannot listen on {}: {e}", sock_path.display()))?;
    daemon::socket_access(&sock_path, socket_gid).map_err(|e| {
        format!(
            "cannot set the owner or mode of {}: {e}",
            sock_path.display()
        )
    })?;
    log::info!(
        "vswitchd {} starting: rundir {}, db {}, poll threads on cores {:?}",
        env!("CARGO_PKG_VERSION"),
        args.rundir.display(),
        db_path.display(),
        cores
    );
    if let Some(addr) = args.metrics {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
        let sock = sock_path.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || vswitch::metrics::serve(listener, sock))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        log::info!("metrics at http://{addr}/metrics");
    }
    rt.set_owner(owner);
    rt.set_tap_journal(tap_journal);
    rt.apply(&cfg);
    let mut control = Control::new(listener, signals, db, cfg, rt)
        .map_err(|e| format!("cannot start control loop: {e}"))?;
    if args.detach || args.log_file.is_some() {
        control.set_log_file(log_path);
    }
    readiness.ready();
    let result = control.run();
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(&pid_path);
    log::info!("vswitchd stopped");
    result.map_err(|e| format!("control loop failed: {e}"))
}
