//! `kinglet serve [--model M] (--port DEV [--baud 115200] | --stdio)`

use super::ModelArg;
use crate::serve::{IoTransport, RuntimeEngine};
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = RuntimeEngine::from_loaded(args.model.load()?, &args.model.path()?)?;
    let mut device = Box::new(Device::new(engine));
    match &args.port {
        Some(port) => {
            let path = port.to_string_lossy().into_owned();
            let serial = open_port(&path, args.baud)?;
            let reader = serial
                .try_clone()
                .with_context(|| format!("cannot share {path}"))?;
            eprintln!(
                "kinglet: serving {} on {path} at {} baud",
                args.model.path()?.display(),
                args.baud
            );
            let mut transport = IoTransport {
                reader,
                writer: serial,
            };
            device
                .run(&mut transport)
                .with_context(|| format!("serial link {path}"))?;
        }
        None => {
            let mut transport = IoTransport {
                reader: std::io::stdin().lock(),
                writer: std::io::stdout().lock(),
            };
            device
                .run(&mut transport)
                .context("standard input/output")?;
        }
    }
    let stats = device.stats();
    eprintln!(
        "kinglet: link closed; {} answered, {} corrupted frames dropped, {} too long",
        stats.answered, stats.corrupt, stats.too_long
    );
    Ok(())
}

/// Opens a serial device in raw mode (8N1, no flow control) with a short read timeout.
pub fn open_port(path: &str, baud: u32) -> anyhow::Result<crate::serial::SerialPort> {
    crate::serial::SerialPort::open(path, baud)
        .map_err(|e| super::CliError::Input(format!("cannot open serial port {path}: {e}")).into())
}
