//! `kinglet serve [--model M|DIR] (--port DEV [--baud 115200] | --stdio | --http ADDR)`:
//! reloads on SIGHUP and when an install directory's `current` link changes (see
//! [`crate::reload`]); `--http` is the local HTTP API of [`crate::http`].

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
        required_unless_present_any = ["stdio", "http"],
        conflicts_with_all = ["stdio", "http"]
    )]
    port: Option<PathBuf>,
    /// Baud rate of --port.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Speak the protocol on standard input and output instead.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Answer HTTP on HOST:PORT instead (127.0.0.1:8080; port 0 picks one): POST /v1/classify,
    /// /v1/forecast, /v1/embed, /v1/search, GET /v1/model, /healthz, /metrics and a demo page
    /// at /.
    #[cfg(feature = "http")]
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<String>,
    /// With --http: a file holding a bearer token that every request but / and /healthz must
    /// carry (`Authorization: Bearer TOKEN`); required to bind a non-loopback address
    /// [default: $KINGLET_HTTP_TOKEN_FILE].
    #[cfg(feature = "http")]
    #[arg(long, value_name = "FILE", requires = "http")]
    token_file: Option<PathBuf>,
    /// With --http: inference requests that may wait for the model; more get 503.
    #[cfg(feature = "http")]
    #[arg(long, value_name = "N", default_value_t = crate::http::DEFAULT_QUEUE, requires = "http")]
    http_queue: usize,
    /// With --http: a search index (`kinglet index build`, with the served model) that
    /// POST /v1/search ranks.
    #[cfg(feature = "http")]
    #[arg(long, value_name = "FILE", requires = "http")]
    index: Option<PathBuf>,
    /// With --http: the largest request body accepted (413 beyond).
    #[cfg(feature = "http")]
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = crate::memory::parse_bytes, requires = "http")]
    http_max_body: u64,
    /// Print the closing statistics as one JSON object on standard error.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    #[cfg(feature = "http")]
    if let Some(addr) = &args.http {
        return run_http(&args, addr);
    }
    let path = args.model.path()?;
    let engine = RuntimeEngine::from_loaded(args.model.load()?, &path)?;
    let mut device = Box::new(Device::new(engine));
    crate::reload::watch_hangup().context("cannot watch for SIGHUP")?;
    crate::reload::watch_stop().context("cannot watch for SIGTERM")?;
    let mut reloader = crate::reload::Reloader::new(&path, args.model.options()?);
    let report = report_reload;
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
    print_closing(
        args.json,
        serde_json::json!({
            "stopped": why,
            "answered": stats.answered,
            "corrupt_frames": stats.corrupt,
            "too_long_frames": stats.too_long,
        }),
        format_args!(
            "{why}; {} answered, {} corrupted frames dropped, {} too long",
            stats.answered, stats.corrupt, stats.too_long
        ),
    );
    Ok(())
}

/// The closing statistics on standard error: one JSON object with `--json`, else one line.
fn print_closing(json: bool, object: serde_json::Value, line: std::fmt::Arguments<'_>) {
    if json {
        eprintln!("{object}");
    } else {
        eprintln!("kinglet: {line}");
    }
}

/// Prints a reload attempt on standard error.
fn report_reload(event: &ReloadEvent) {
    match event {
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
    }
}

/// The token file of `--token-file` when not given (what kinglet-http.service sets).
#[cfg(feature = "http")]
pub const TOKEN_FILE_ENV: &str = "KINGLET_HTTP_TOKEN_FILE";

#[cfg(feature = "http")]
fn run_http(args: &Args, addr: &str) -> anyhow::Result<()> {
    use crate::http::{HttpOptions, HttpServer};
    let path = args.model.path()?;
    let options = args.model.options()?;
    let token_file = args.token_file.clone().or_else(|| {
        std::env::var_os(TOKEN_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let token = match &token_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                super::CliError::Input(format!(
                    "cannot read the token file {}: {e}",
                    file.display()
                ))
            })?;
            let token = text.trim().to_owned();
            if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(super::CliError::Input(format!(
                    "the token in {} must be one line of at least 16 characters without spaces",
                    file.display()
                ))
                .into());
            }
            Some(token)
        }
        None => None,
    };
    let index = match &args.index {
        Some(file) => {
            let bytes = std::fs::read(file).map_err(|e| {
                super::CliError::Input(format!("cannot read {}: {e}", file.display()))
            })?;
            Some(
                crate::index::Index::from_bytes(&bytes)
                    .map_err(|e| super::CliError::Input(format!("{}: {e}", file.display())))?,
            )
        }
        None => None,
    };
    // the model is loaded and self-tested before the first request is taken
    let (loaded, checked) = crate::install::check_loaded(&path, &options)?;
    if let Some(index) = &index {
        if hex::encode(index.model_sha256) != loaded.sha256_hex {
            return Err(super::CliError::Input(format!(
                "{} was built with another model than {}; rebuild it with kinglet index build",
                args.index
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display(),
                path.display()
            ))
            .into());
        }
    }
    let server = HttpServer::bind(HttpOptions {
        addr: addr.to_owned(),
        token,
        max_body_bytes: usize::try_from(args.http_max_body).unwrap_or(usize::MAX),
        queue: args.http_queue,
        index,
    })
    .map_err(|e| super::CliError::Input(e.to_string()))?;
    crate::reload::watch_hangup().context("cannot watch for SIGHUP")?;
    crate::reload::watch_stop().context("cannot watch for SIGTERM")?;
    let mut reloader = crate::reload::Reloader::new(&path, options);
    super::note(format_args!(
        "serving {} on http://{} (self-test {} cases ok; SIGHUP reloads, SIGTERM stops)",
        path.display(),
        server.local_addr(),
        checked.self_test.cases
    ));
    let stats = server.run(loaded, &path, &mut reloader, report_reload)?;
    let why = "stopped by signal";
    print_closing(
        args.json,
        serde_json::json!({
            "stopped": why,
            "answered": stats.answered,
            "errors": stats.errors,
            "busy": stats.busy,
        }),
        format_args!(
            "{why}; {} answered, {} errors ({} busy)",
            stats.answered, stats.errors, stats.busy
        ),
    );
    Ok(())
}

/// Opens a serial device in raw mode (8N1, no flow control) with a short read timeout.
pub fn open_port(path: &str, baud: u32) -> anyhow::Result<crate::serial::SerialPort> {
    crate::serial::SerialPort::open(path, baud)
        .map_err(|e| super::CliError::Input(format!("cannot open serial port {path}: {e}")).into())
}
