//! `kinglet completions SHELL` and the hidden `kinglet man-pages DIR`, also used by
//! `kinglet-export` for its own command line.

use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: Args, cmd: clap::Command) -> anyhow::Result<()> {
    write_completions(cmd, args.shell, &mut std::io::stdout().lock())?;
    Ok(())
}

pub fn man_pages(args: ManArgs, cmd: clap::Command) -> anyhow::Result<()> {
    let written = write_man_pages(cmd, &args.dir)?;
    super::note(format_args!(
        "wrote {written} man pages into {}",
        args.dir.display()
    ));
    Ok(())
}

/// Writes `cmd`'s completion script for `shell`.
pub fn write_completions(
    mut cmd: clap::Command,
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    // clap_complete writes with `write_all(…).expect(…)`: render into memory first so that
    // a closed pipe is an error here, not a panic there
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes `NAME.1` and `NAME-SUBCOMMAND.1` for every visible subcommand into `dir`; returns how
/// many pages it wrote.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = cmd.disable_help_subcommand(true);
    let mut written = 0;
    let mut pages = vec![(cmd.get_name().to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        // leaked: one short string per page, once per `man-pages` run
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .with_context(|| format!("cannot render {name}.1"))?;
        std::fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}
