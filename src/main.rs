use clap::Parser;

fn main() {
    let cli = berth::cli::Cli::parse();
    if cli.version {
        print!("{}", berth::cli::version_text());
        return;
    }
    let g = &cli.global;
    let to_file = g.log.is_some();
    if let Err(e) = berth::log::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
    let code = match berth::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // The log file gets the logrus-style line engines read; a person gets one plain line.
            let msg = format!("{e:#}");
            if to_file {
                tracing::error!("{msg}");
            }
            eprintln!("berth: {msg}");
            1
        }
    };
    std::process::exit(code);
}
