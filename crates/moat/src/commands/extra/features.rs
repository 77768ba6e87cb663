//! `moat features`: what this runtime supports, as the OCI features JSON.

pub fn run() -> i32 {
    match serde_json::to_string_pretty(&runtime::bundle::features()) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("moat: {e}");
            1
        }
    }
}
