//! The library's log lines on stderr: warnings and errors always (a damaged journal record
//! that will run again, a peak frequency the grid barely carries, a stale directory removed),
//! more with `GPUREVOLVE_LOG=info` or `debug`. The library itself never prints.

struct Stderr(log::LevelFilter);

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0 && metadata.target().starts_with("gpurevolve")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_lowercase();
            eprintln!("{level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger, once, at the start of `main`.
pub fn init() {
    let level = match std::env::var("GPUREVOLVE_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let logger: &'static Stderr = Box::leak(Box::new(Stderr(level)));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
