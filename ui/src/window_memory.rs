//! The window's size, remembered between runs: written to the profile's
//! `ui-window.json` whenever the window is resized, read at start.
//!
//! Owns: that one file. Must never: store anything but the two numbers, or
//! fail the app over it (an unreadable or odd file means the default size;
//! a failed write is reported on stderr once and otherwise ignored).

use std::path::{Path, PathBuf};

/// The size of a first run (and of a file that cannot be read).
pub const DEFAULT: (f32, f32) = (1100.0, 720.0);
/// Smaller than this, the sidebar and a screen do not fit.
pub const MIN: (f32, f32) = (640.0, 420.0);
/// Larger than any screen: a size beyond it is not believed.
const MAX: f32 = 16384.0;

/// The file under the profile root.
pub fn path(root: &Path) -> PathBuf {
    root.join("ui-window.json")
}

/// The remembered size, or [`DEFAULT`].
pub fn load(root: &Path) -> (f32, f32) {
    let Ok(text) = std::fs::read_to_string(path(root)) else {
        return DEFAULT;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return DEFAULT;
    };
    let dim = |k: &str, min: f32| {
        v[k].as_f64()
            .map(|x| x as f32)
            .filter(|x| x.is_finite() && *x >= min && *x <= MAX)
    };
    match (dim("width", MIN.0), dim("height", MIN.1)) {
        (Some(w), Some(h)) => (w, h),
        _ => DEFAULT,
    }
}

/// Remembers `size` (logical pixels).
pub fn save(root: &Path, size: (f32, f32)) -> Result<(), String> {
    let p = path(root);
    let body = serde_json::json!({ "width": size.0.round(), "height": size.1.round() });
    std::fs::write(&p, body.to_string()).map_err(|e| format!("writing {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_size_and_refuses_nonsense() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), DEFAULT, "no file yet");
        save(dir.path(), (900.4, 650.0)).unwrap();
        assert_eq!(load(dir.path()), (900.0, 650.0));
        std::fs::write(path(dir.path()), r#"{"width": 10, "height": 650}"#).unwrap();
        assert_eq!(load(dir.path()), DEFAULT, "too small");
        std::fs::write(path(dir.path()), "not json").unwrap();
        assert_eq!(load(dir.path()), DEFAULT);
    }
}
