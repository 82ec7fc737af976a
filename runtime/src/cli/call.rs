//! `kinglet call --port DEV [--baud …] [--json] (classify TEXT | pair A B | embed TEXT | tag TEXT | forecast --csv F | push --csv F | info | ping)`

use super::CliError;
use crate::series::read_csv;
use anyhow::{bail, Context};
use kinglet_firmware::client::Client;
use kinglet_firmware::wire::{bounded, DeviceInfo, ModelKind, Request, Response};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serial device the board serves on (or a pty).
    #[arg(long, value_name = "DEV")]
    port: PathBuf,
    /// Baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Print JSON, as `kinglet classify --json` / `kinglet forecast --json` do.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for each answer (a request without an answer is sent once more after
    /// a delay scaled to the baud rate; `push` rows never are).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Classify one text.
    Classify {
        /// The text.
        text: String,
    },
    /// Classify a sentence pair (an NLI or cross-encoder classifier).
    Pair {
        /// The first text (premise, query).
        first: String,
        /// The second text (hypothesis, passage).
        second: String,
    },
    /// The sentence vector of a text (an embedding model).
    Embed {
        /// The text.
        text: String,
    },
    /// The named entities of a text (a token classifier).
    Tag {
        /// The text.
        text: String,
    },
    /// Send the last `lookback` rows of a CSV as one window.
    Forecast {
        /// CSV with the device model's columns.
        #[arg(long)]
        csv: PathBuf,
    },
    /// Push every row of a CSV into the device's ring buffer, then ask for a forecast.
    Push {
        /// CSV with the device model's columns.
        #[arg(long)]
        csv: PathBuf,
    },
    /// Show the device's model description.
    Info,
    /// Check the device answers.
    Ping,
}

fn names(list: &[kinglet_firmware::heapless::String<32>]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn device_error(response: Response) -> anyhow::Error {
    match response {
        Response::Error { code, detail } => anyhow::anyhow!("device answered {code:?}: {detail}"),
        other => anyhow::anyhow!("unexpected answer {other:?}"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.port.to_string_lossy().into_owned();
    let port = super::serve::open_port(&path, args.baud)?;
    let mut client = Client::new(port, std::time::Duration::from_secs_f64(args.timeout))
        .with_retry(kinglet_firmware::client::retry_after_for_baud(args.baud));
    let mut call = |r: &Request| {
        client
            .call(r)
            .with_context(|| format!("calling the device on {path}"))
    };
    let info = match call(&Request::Hello)? {
        Response::Hello(info) => info,
        other => return Err(device_error(other)),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.what {
        What::Ping => {
            let started = std::time::Instant::now();
            match call(&Request::Ping { nonce: 0x6b6c6774 })? {
                Response::Pong { nonce: 0x6b6c6774 } => {
                    outln!("pong in {:.1} ms", started.elapsed().as_secs_f64() * 1e3)
                }
                other => return Err(device_error(other)),
            }
        }
        What::Info => print_info(&info, args.json)?,
        What::Classify { text } => {
            check_text_bytes(text.len())?;
            match call(&Request::Classify {
                text: bounded(&text),
            })? {
                Response::Classified(c) => {
                    print_classified(&mut out, &info, (&text, None), c, args.json)?
                }
                other => return Err(device_error(other)),
            }
        }
        What::Pair { first, second } => {
            check_text_bytes(first.len() + second.len())?;
            match call(&Request::ClassifyPair {
                first: bounded(&first),
                second: bounded(&second),
            })? {
                Response::Classified(c) => {
                    print_classified(&mut out, &info, (&first, Some(&second)), c, args.json)?
                }
                other => return Err(device_error(other)),
            }
        }
        What::Embed { text } => {
            check_text_bytes(text.len())?;
            match call(&Request::Embed {
                text: bounded(&text),
            })? {
                Response::Embedded { vector } if args.json => {
                    let v = serde_json::json!({
                        "text": text,
                        "embedding": vector.as_slice(),
                        "dimensions": vector.len(),
                    });
                    outln!("{v}");
                }
                Response::Embedded { vector } => {
                    let values: Vec<String> = vector.iter().map(|v| format!("{v:.6}")).collect();
                    outln!("{}", values.join(" "));
                }
                other => return Err(device_error(other)),
            }
        }
        What::Tag { text } => {
            check_text_bytes(text.len())?;
            match call(&Request::Tag {
                text: bounded(&text),
            })? {
                Response::Tagged { entities } => {
                    // the wire carries spans, not words: an entity's word is its span of the text
                    let chars: Vec<char> = text.chars().collect();
                    let entities: Vec<crate::tag::Entity> = entities
                        .iter()
                        .map(|e| {
                            let (start, end) = (e.start as usize, e.end as usize);
                            crate::tag::Entity {
                                entity_group: e.label.to_string(),
                                score: e.score,
                                word: chars[start.min(chars.len())..end.min(chars.len())]
                                    .iter()
                                    .collect(),
                                start,
                                end,
                            }
                        })
                        .collect();
                    if args.json {
                        let v = serde_json::json!({"text": text, "entities": entities});
                        outln!("{v}");
                    } else {
                        let tagged = crate::tag::Tagged {
                            entities,
                            truncated: false,
                            tokens: 0,
                        };
                        super::classify::write_entities(&mut out, &tagged)?;
                    }
                }
                other => return Err(device_error(other)),
            }
        }
        What::Forecast { csv } | What::Push { csv } if info.kind != ModelKind::Forecaster => {
            bail!(CliError::Input(format!(
                "the device runs a {}; {} cannot be forecast",
                format!("{:?}", info.kind).to_lowercase(),
                csv.display()
            )));
        }
        What::Forecast { csv } => {
            let series = read_csv(&csv, &names(&info.names))?;
            let l = info.lookback as usize;
            if series.rows() < l {
                bail!(CliError::Input(format!(
                    "{} has {} rows; the device needs {l}",
                    csv.display(),
                    series.rows()
                )));
            }
            let window = series.slice_rows(series.rows() - l, series.rows());
            let window = kinglet_firmware::heapless::Vec::from_slice(window)
                .map_err(|_| CliError::Input("window larger than a frame carries".into()))?;
            match call(&Request::Forecast { window })? {
                Response::Forecast { values } => super::forecast::print_forecast(
                    &mut out,
                    &names(&info.targets),
                    &values,
                    None,
                    args.json,
                    None,
                )?,
                other => return Err(device_error(other)),
            }
        }
        What::Push { csv } => {
            let series = read_csv(&csv, &names(&info.names))?;
            let f = info.features as usize;
            for r in 0..series.rows() {
                let row =
                    kinglet_firmware::heapless::Vec::from_slice(&series.values[r * f..(r + 1) * f])
                        .map_err(|_| CliError::Input("row larger than a frame carries".into()))?;
                match call(&Request::Push { row })? {
                    Response::Pushed { .. } => {}
                    other => return Err(device_error(other)),
                }
            }
            match call(&Request::ForecastNow)? {
                Response::Forecast { values } => super::forecast::print_forecast(
                    &mut out,
                    &names(&info.targets),
                    &values,
                    None,
                    args.json,
                    None,
                )?,
                other => return Err(device_error(other)),
            }
        }
    }
    Ok(())
}

/// Refuses a text the protocol cannot carry, before it is sent.
fn check_text_bytes(bytes: usize) -> anyhow::Result<()> {
    if bytes > kinglet_firmware::wire::MAX_TEXT_BYTES {
        bail!(CliError::Input(format!(
            "text is {bytes} bytes; the protocol carries at most {}",
            kinglet_firmware::wire::MAX_TEXT_BYTES
        )));
    }
    Ok(())
}

/// Prints a device's classification of a text (or a pair) as `kinglet classify` does.
fn print_classified(
    out: &mut impl std::io::Write,
    info: &DeviceInfo,
    (text, second): (&str, Option<&str>),
    c: kinglet_firmware::wire::Classified,
    json: bool,
) -> anyhow::Result<()> {
    let labels = names(&info.names);
    let logits: Vec<f32> = c.logits.to_vec();
    let result = crate::classify::Classification {
        label_index: c.label_index as usize,
        label: labels
            .get(c.label_index as usize)
            .cloned()
            .unwrap_or_default(),
        score: c.score,
        scores: crate::classify::softmax(&logits),
        logits,
        truncated: false,
        tokens: 0,
    };
    if json {
        // the wire answer carries no token count, truncation or scores of its own (a
        // multi-label model's are not a softmax): leave them out rather than invent them
        let mut v = super::classify::result_json(text, &result);
        if let Some(o) = v.as_object_mut() {
            for key in ["tokens", "truncated", "scores"] {
                o.remove(key);
            }
            if let Some(second) = second {
                o.insert("text_pair".into(), second.into());
            }
        }
        writeln!(out, "{v}")?;
    } else {
        let shown = match second {
            Some(second) => format!("{text}\t{second}"),
            None => text.to_string(),
        };
        super::classify::write_result(out, &shown, &result, false)?;
    }
    Ok(())
}

fn print_info(info: &DeviceInfo, json: bool) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "protocol_version": info.protocol_version,
            "kind": format!("{:?}", info.kind).to_lowercase(),
            "names": names(&info.names),
            "targets": names(&info.targets),
            "max_text_bytes": info.max_text_bytes,
            "lookback": info.lookback,
            "features": info.features,
            "horizon": info.horizon,
            "budget_bytes": info.budget_bytes,
            "frames_rejected": info.frames_rejected,
        });
        outln!("{v}");
    } else {
        outln!("protocol   {}", info.protocol_version);
        outln!("kind       {:?}", info.kind);
        outln!(
            "names      {}",
            super::printable(&names(&info.names).join(", "))
        );
        if info.kind == ModelKind::Embedder {
            outln!("vectors    {} values", info.features);
        }
        if info.kind == ModelKind::Forecaster {
            outln!(
                "targets    {}",
                super::printable(&names(&info.targets).join(", "))
            );
            outln!(
                "window     {} rows × {} → {} rows",
                info.lookback,
                info.features,
                info.horizon
            );
        }
        outln!("rejected   {} frames", info.frames_rejected);
    }
    Ok(())
}
