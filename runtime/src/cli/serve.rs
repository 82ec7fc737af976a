//! `kinglet serve [--model M|DIR] (--port DEV [--baud 115200] | --stdio)`: reloads on SIGHUP
//! and when an install directory's `current` link changes (see [`crate::reload`]).

use super::ModelArg;
use crate::reload::ReloadEvent;
use crate::serve::{serve_reloading, RuntimeEngine};
use anyhow::Context;
use kinglet_firmware::Device;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Serial device: /dev/ttyAMA0 (Pi UART), /dev/ttyGS0 (USB gadget), /dev/ttyUSB0, a pty.
    #[arg(
        long,
        value_name = "DEV",
        required_unless_present = "stdio",
        conflicts_with = "stdio"
    )]
    port: Option<PathBuf>,
    /// Baud rate of --port.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Speak the protocol on standard input and output instead.
    #[arg(long)]
    stdio: bool,
    /// Print the closing statistics as one JSON object on standard error.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let engine = RuntimeEngine::from_loaded(args.model.load()?, &path)?;
    let mut device = Box::new(Device::new(engine));
    crate::reload::watch_hangup().context("cannot watch for SIGHUP")?;
    crate::reload::watch_stop().context("cannot watch for SIGTERM")?;
    let mut reloader = crate::reload::Reloader::new(&path, args.model.options()?);
    let report = |event: &ReloadEvent| match event {
        ReloadEvent::Reloaded { path, checked } => eprintln!(
            "kinglet: reloaded {} (sha256 {}, {}, self-test {} cases ok)",
            path.display(),
            checked.sha256_hex,
            super::verify::signed_by(checked.signer.as_ref()),
            checked.self_test.cases
        ),
        ReloadEvent::Refused { path, error } => eprintln!(
            "kinglet: reload of {} refused, the previous model keeps serving: {}",
            path.display(),
            super::one_line(&error.to_string())
        ),
    };
    match &args.port {
        Some(port) => {
            let name = port.to_string_lossy().into_owned();
            let mut serial = open_port(&name, args.baud)?;
            let mut reader = serial
                .try_clone()
                .with_context(|| format!("cannot share {name}"))?;
            super::note(format_args!(
                "serving {} on {name} at {} baud (SIGHUP reloads, SIGTERM stops)",
                path.display(),
                args.baud
            ));
            serve_reloading(&mut device, &mut reader, &mut serial, &mut reloader, report)
                .with_context(|| format!("serial link {name}"))?;
        }
        None => {
            let mut reader = crate::serve::PolledStdin::new(250).context("standard input")?;
            super::note(format_args!(
                "serving {} on standard input/output (SIGHUP reloads, SIGTERM stops)",
                path.display()
            ));
            let mut writer = std::io::stdout().lock();
            serve_reloading(&mut device, &mut reader, &mut writer, &mut reloader, report)
                .context("standard input/output")?;
        }
    }
    let stats = device.stats();
    let why = if crate::reload::stop_requested() {
        "stopped by signal"
    } else {
        "link closed"
    };
    if args.json {
        eprintln!(
            "{}",
            serde_json::json!({
                "stopped": why,
                "answered": stats.answered,
                "corrupt_frames": stats.corrupt,
                "too_long_frames": stats.too_long,
            })
        );
    } else {
        eprintln!(
            "kinglet: {why}; {} answered, {} corrupted frames dropped, {} too long",
            stats.answered, stats.corrupt, stats.too_long
        );
    }
    Ok(())
}

/// Opens a serial device in raw mode (8N1, no flow control) with a short read timeout.
pub fn open_port(path: &str, baud: u32) -> anyhow::Result<crate::serial::SerialPort> {
    crate::serial::SerialPort::open(path, baud)
        .map_err(|e| super::CliError::Input(format!("cannot open serial port {path}: {e}")).into())
}
