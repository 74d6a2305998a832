//! The points of a sweep: a cartesian grid (`--grid name=v1,v2,v3`, one axis
//! per flag), a list read from a file (`--list points.csv` or `.toml`), and
//! the scripts (`--script a.rhai --script b.rhai`) as one more dimension.
//!
//! A point is a set of `--param` overrides (see [`crate::config::Param`]):
//! `gamma=0.1` is a `[strategy.params]` entry and `paper.latency_ms=50` a
//! config key, so anything the config holds can be swept.

use std::path::{Path, PathBuf};

/// Why the points could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error(
        "--grid {0:?} is not name=v1,v2,..: write e.g. --grid gamma=0.05,0.1,0.2 or --grid paper.latency_ms=10,50"
    )]
    Axis(String),
    #[error("--grid {name} is given twice: give each parameter one --grid with all its values")]
    Duplicate { name: String },
    #[error("cannot read the point list {path}: {error}")]
    Read { path: String, error: String },
    #[error("point list {path}, {place}: {problem}")]
    List { path: String, place: String, problem: String },
    #[error("the sweep has no points: give --grid name=v1,v2 (repeatable), --list FILE, or --script FILE")]
    Empty,
}

/// One grid dimension: a parameter and the values it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `name=v1,v2,v3`.
    pub fn parse(text: &str) -> Result<Self, GridError> {
        let bad = || GridError::Axis(text.to_string());
        let (name, values) = text.split_once('=').ok_or_else(bad)?;
        let name = name.trim();
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if name.is_empty() || values.iter().any(String::is_empty) {
            return Err(bad());
        }
        Ok(Self { name: name.to_string(), values })
    }
}

/// One point of a sweep: the overrides it applies and the script it runs
/// (`None`: the config's strategy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Point {
    /// (name, value) in axis order, as `--param name=value` would say them.
    pub params: Vec<(String, String)>,
    pub script: Option<PathBuf>,
}

impl Point {
    /// The overrides as `--param` arguments.
    pub fn param_args(&self) -> Vec<String> {
        self.params.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }

    /// A short name for tables: `gamma=0.1 k=150 [skew.rhai]`.
    pub fn label(&self) -> String {
        let mut parts = self.param_args();
        if let Some(s) = &self.script {
            parts.push(format!(
                "[{}]",
                s.file_name().map_or_else(|| s.display().to_string(), |f| f.to_string_lossy().into())
            ));
        }
        if parts.is_empty() {
            "(config as is)".into()
        } else {
            parts.join(" ")
        }
    }

    /// The value this point gives `name`, if any.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Checks that no parameter has two axes.
pub fn check_axes(axes: &[Axis]) -> Result<(), GridError> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.name == a.name) {
            return Err(GridError::Duplicate { name: a.name.clone() });
        }
    }
    Ok(())
}

/// Every combination of the axes' values (the first axis varies slowest),
/// times every script (outermost). No axes and no scripts is one point: the
/// config as it is.
pub fn expand(axes: &[Axis], scripts: &[PathBuf]) -> Vec<Point> {
    let mut points = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p: Vec<(String, String)>| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.name.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    with_scripts(points.into_iter().map(|params| Point { params, script: None }).collect(), scripts)
}

/// Each point once per script (when scripts are given and the point names
/// none of its own).
pub fn with_scripts(points: Vec<Point>, scripts: &[PathBuf]) -> Vec<Point> {
    if scripts.is_empty() {
        return points;
    }
    let mut out = Vec::with_capacity(points.len() * scripts.len());
    for s in scripts {
        for p in &points {
            if p.script.is_some() {
                if s == &scripts[0] {
                    out.push(p.clone());
                }
                continue;
            }
            out.push(Point { params: p.params.clone(), script: Some(s.clone()) });
        }
    }
    out
}

/// Reads a point list: CSV (a header of parameter names, one point per
/// row; a `script` column names a script) or TOML (`[[point]]` tables).
pub fn read_list(path: &Path) -> Result<Vec<Point>, GridError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GridError::Read { path: path.display().to_string(), error: e.to_string() })?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_toml {
        parse_toml_list(&text, &path.display().to_string())
    } else {
        parse_csv_list(&text, &path.display().to_string())
    }
}

/// CSV: `name1,name2[,script]` then one row of values per point; `#` lines
/// are comments. No quoting: values are numbers, keys and paths.
pub fn parse_csv_list(text: &str, origin: &str) -> Result<Vec<Point>, GridError> {
    let err = |line: usize, problem: String| GridError::List {
        path: origin.to_string(),
        place: format!("line {line}"),
        problem,
    };
    let mut rows = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = rows.next() else { return Ok(Vec::new()) };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(err(1, "the header has an empty column name".into()));
    }
    let mut points = Vec::new();
    for (i, line) in rows {
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() != names.len() {
            return Err(err(
                i + 1,
                format!("{} values for {} columns ({})", values.len(), names.len(), names.join(",")),
            ));
        }
        let mut p = Point::default();
        for (n, v) in names.iter().zip(values) {
            if v.is_empty() {
                continue;
            }
            if *n == "script" {
                p.script = Some(PathBuf::from(v));
            } else {
                p.params.push((n.to_string(), v.to_string()));
            }
        }
        points.push(p);
    }
    Ok(points)
}

/// TOML: `[[point]]` tables of `name = value` (dotted names quoted:
/// `"paper.latency_ms" = 50`); `script = "a.rhai"` names a script.
pub fn parse_toml_list(text: &str, origin: &str) -> Result<Vec<Point>, GridError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct List {
        #[serde(default)]
        point: Vec<toml::Table>,
    }
    let list: List = toml::from_str(text).map_err(|e| GridError::List {
        path: origin.to_string(),
        place: "file".into(),
        problem: format!("{e}; write [[point]] tables of name = value"),
    })?;
    let mut points = Vec::new();
    for (i, table) in list.point.into_iter().enumerate() {
        let mut p = Point::default();
        for (name, value) in table {
            match (name.as_str(), value) {
                ("script", toml::Value::String(s)) => p.script = Some(PathBuf::from(s)),
                ("script", other) => {
                    return Err(GridError::List {
                        path: origin.to_string(),
                        place: format!("point {}", i + 1),
                        problem: format!("script = {other} must be a file path string"),
                    })
                }
                // As TOML writes it, so `--param` reads the same value back.
                (_, value) => p.params.push((name, value.to_string())),
            }
        }
        points.push(p);
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_refuse_empty_parts() {
        let a = Axis::parse("gamma=0.05, 0.1,0.2").unwrap();
        assert_eq!(a, Axis { name: "gamma".into(), values: vec!["0.05".into(), "0.1".into(), "0.2".into()] });
        for bad in ["gamma", "=1,2", "gamma=", "gamma=1,,2"] {
            assert!(Axis::parse(bad).unwrap_err().to_string().contains("is not name=v1,v2"), "{bad}");
        }
        let axes = [Axis::parse("a=1").unwrap(), Axis::parse("a=2").unwrap()];
        assert!(check_axes(&axes).unwrap_err().to_string().contains("--grid a is given twice"));
    }

    #[test]
    fn the_grid_is_the_cartesian_product_first_axis_slowest() {
        let axes = [Axis::parse("a=1,2").unwrap(), Axis::parse("b=x,y,z").unwrap()];
        let points = expand(&axes, &[]);
        let labels: Vec<String> = points.iter().map(Point::label).collect();
        assert_eq!(labels, ["a=1 b=x", "a=1 b=y", "a=1 b=z", "a=2 b=x", "a=2 b=y", "a=2 b=z"]);
        assert_eq!(expand(&[], &[]), vec![Point::default()]);
        let scripts = [PathBuf::from("s/one.rhai"), PathBuf::from("two.rhai")];
        let points = expand(&axes[..1], &scripts);
        let labels: Vec<String> = points.iter().map(Point::label).collect();
        assert_eq!(labels, ["a=1 [one.rhai]", "a=2 [one.rhai]", "a=1 [two.rhai]", "a=2 [two.rhai]"]);
        assert_eq!(expand(&[], &scripts).len(), 2);
    }

    #[test]
    fn lists_read_from_csv_and_toml() {
        let csv = "# two points\ngamma,paper.latency_ms,script\n0.1,10,\n0.2,50,b.rhai\n";
        let points = parse_csv_list(csv, "p.csv").unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].param_args(), ["gamma=0.1", "paper.latency_ms=10"]);
        assert_eq!(points[1].script, Some(PathBuf::from("b.rhai")));
        let e = parse_csv_list("a,b\n1\n", "p.csv").unwrap_err().to_string();
        assert_eq!(e, "point list p.csv, line 2: 1 values for 2 columns (a,b)");

        let toml =
            "[[point]]\ngamma = 0.1\n\"paper.maker_fee\" = \"0.0001\"\n[[point]]\ngamma = 2\nscript = \"a.rhai\"\n";
        let points = parse_toml_list(toml, "p.toml").unwrap();
        assert_eq!(points[0].param_args(), ["gamma=0.1", "paper.maker_fee=\"0.0001\""]);
        assert_eq!((points[1].value("gamma"), points[1].script.as_deref()), (Some("2"), Some(Path::new("a.rhai"))));
        let e = parse_toml_list("[[pont]]\n", "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("point list p.toml, file: ") && e.contains("[[point]]"), "{e}");
    }
}
