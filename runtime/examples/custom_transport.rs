//! Serve a model over a byte transport of your own: here a TCP socket on loopback, with the
//! serial protocol's framing (COBS + CRC, see `kinglet_firmware::wire`) on top. A USB bulk
//! endpoint, a BLE characteristic or a Unix socket plug in the same way: anything that is
//! `Read + Write`.
//!
//! `cargo run --release -p kinglet-runtime --example custom_transport -- [MODEL.kinglet]`
//! (default: the shipped `models/sentiment.kinglet`). A client thread connects, asks the
//! device what it serves and classifies two texts; the server ends when the client hangs up.

use kinglet_firmware::client::Client;
use kinglet_firmware::wire::{Request, Response};
use kinglet_firmware::Device;
use kinglet_runtime::serve::{IoTransport, RuntimeEngine};
use kinglet_runtime::{LoadOptions, Model};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: kinglet_runtime::KingletAllocator = kinglet_runtime::KingletAllocator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".kinglet"))
        .unwrap_or_else(|| shipped("sentiment.kinglet"));
    let loaded = Model::load(&model, &LoadOptions::default())?;
    let engine = RuntimeEngine::from_loaded(loaded, model.as_ref())?;
    let mut device = Box::new(Device::new(engine));

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = std::thread::spawn(move || -> Result<(), String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        // the client polls: reads must time out rather than block forever
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let mut client = Client::new(stream, Duration::from_secs(30));
        let Response::Hello(info) = client.call(&Request::Hello).map_err(|e| e.to_string())? else {
            return Err("no hello".into());
        };
        let labels: Vec<&str> = info.names.iter().map(|n| n.as_str()).collect();
        println!("device serves a {:?} with labels {labels:?}", info.kind);
        for text in ["a gorgeous, moving film", "the worst movie of the year"] {
            let request = Request::Classify {
                text: kinglet_firmware::wire::bounded(text),
            };
            match client.call(&request).map_err(|e| e.to_string())? {
                Response::Classified(c) => println!(
                    "{:<10} {:.4}  {text}",
                    labels.get(usize::from(c.label_index)).unwrap_or(&"?"),
                    c.score
                ),
                other => return Err(format!("unexpected answer {other:?}")),
            }
        }
        Ok(()) // dropping the stream hangs up
    });

    let (stream, _) = listener.accept()?;
    let mut transport = IoTransport {
        reader: stream.try_clone()?,
        writer: stream,
    };
    device.run(&mut transport)?;
    client.join().map_err(|_| "client thread panicked")??;
    println!("served {} requests", device.stats().answered);
    Ok(())
}

fn shipped(name: &str) -> String {
    ["models", "../models"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| format!("models/{name}"))
}
