//! Writing a generated tree into `DIR`: only under `DIR/servers`, never through a symbolic
//! link, unchanged files left as they are, and files of an earlier generation that this one no
//! longer has removed (only files whose first line carries the generated marker).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::{File, HEADER};
use crate::error::{Error, Result};

/// What [`write()`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Files created or changed, relative to `DIR`.
    pub written: Vec<String>,
    /// Files already holding these bytes.
    pub unchanged: usize,
    /// Generated files of an earlier run that are gone now, relative to `DIR`.
    pub removed: Vec<String>,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::bad_input(format!("cannot {what} {}: {e}", path.display()))
}

/// Writes `files` (paths relative to `dir`, all under `servers/`) into `dir`, then removes the
/// generated files under `dir/servers` that `files` does not hold.
pub fn write(dir: &Path, files: &[File]) -> Result<Written> {
    let mut out = Written::default();
    let mut keep = BTreeSet::new();
    for f in files {
        let rel = checked(&f.path)?;
        keep.insert(rel.clone());
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            make_dirs(dir, parent)?;
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() || !m.is_file() => {
                return Err(Error::bad_input(format!(
                    "{} exists and is not a regular file; not writing through it",
                    path.display()
                )))
            }
            Ok(_) => {
                if fs::read(&path).is_ok_and(|old| old == f.contents.as_bytes()) {
                    out.unchanged += 1;
                    continue;
                }
            }
            Err(_) => {}
        }
        fs::write(&path, &f.contents).map_err(|e| io_error(&path, "write", e))?;
        out.written.push(f.path.clone());
    }
    let servers = dir.join("servers");
    let mut stale = Vec::new();
    collect_stale(&servers, Path::new("servers"), &keep, &mut stale)?;
    for rel in stale {
        let path = dir.join(&rel);
        fs::remove_file(&path).map_err(|e| io_error(&path, "remove", e))?;
        // Directories emptied by it go too (never `servers` itself).
        let mut d = path.parent();
        while let Some(p) = d {
            if p == servers || fs::remove_dir(p).is_err() {
                break;
            }
            d = p.parent();
        }
        out.removed.push(rel.to_string_lossy().replace('\\', "/"));
    }
    Ok(out)
}

/// `rel` as a relative path of plain components under `servers/`.
fn checked(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || !p.starts_with("servers") || p.components().count() < 2 {
        return Err(Error::internal(format!(
            "generated path {rel:?} is not under servers/"
        )));
    }
    Ok(p.to_path_buf())
}

/// Creates `path` (under `dir`) and its parents below `dir`, refusing symbolic links on the way.
fn make_dirs(dir: &Path, path: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
    let rel = path.strip_prefix(dir).expect("generated paths are under dir");
    let mut cur = dir.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::bad_input(format!(
                    "{} exists and is not a directory (or is a symbolic link); not writing through it",
                    cur.display()
                )))
            }
            Err(_) => fs::create_dir(&cur).map_err(|e| io_error(&cur, "create", e))?,
        }
    }
    Ok(())
}

/// Generated files under `path` (relative name `rel`) not in `keep`; symbolic links are not
/// followed.
fn collect_stale(path: &Path, rel: &Path, keep: &BTreeSet<PathBuf>, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path, "read", e)),
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let p = path.join(&name);
        let r = rel.join(&name);
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            collect_stale(&p, &r, keep, out)?;
        } else if m.is_file() && !keep.contains(&r) && is_generated(&p) {
            out.push(r);
        }
    }
    Ok(())
}

/// Whether the first line of the file at `path` carries the generated marker.
pub fn is_generated(path: &Path) -> bool {
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    if BufReader::new(f).take(512).read_line(&mut line).is_err() {
        return false;
    }
    let line = line.trim_end();
    ["// ", "# ", "<!-- "]
        .iter()
        .any(|c| line.strip_prefix(c).is_some_and(|rest| rest.starts_with(HEADER)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refuses_paths_outside_servers() {
        for bad in ["../x", "servers/../../x", "/etc/x", "x/servers/y", "servers"] {
            assert!(checked(bad).is_err(), "{bad}");
        }
        assert!(checked("servers/crm/a.py").is_ok());
    }
}
