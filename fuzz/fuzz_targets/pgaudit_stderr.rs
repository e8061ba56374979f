#![no_main]

use libfuzzer_sys::fuzz_target;
use rolewatch_event::LogFormat;

fuzz_target!(|data: &[u8]| rolewatch_parse_fuzz::parse_input(LogFormat::PgauditStderr, data));
