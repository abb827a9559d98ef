//! docs/deploy.md shows what `bootstrap render` produces, not hand-written copies: every fenced block that
//! follows a `<!-- rendered -->` line is the output of the `bootstrap render ...` command in the `sh` block
//! just before it, re-run here from the repository root. The test fails when the guide and the renderer
//! drift; `ENTRAGATE_BLESS=1` rewrites the guide's blocks from the renderer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use std::process::Command;

const GUIDE: &str = "docs/deploy.md";
const MARKER: &str = "<!-- rendered -->";
const BLESS_ENV: &str = "ENTRAGATE_BLESS";

/// A rendered example: the command's words and the line range of the output block's body.
struct Example {
    words: Vec<String>,
    body: std::ops::Range<usize>,
}

/// The fenced block starting at `open` (its ``` line): the range of its body lines.
fn fenced(lines: &[&str], open: usize) -> std::ops::Range<usize> {
    assert!(
        lines[open].starts_with("```"),
        "{GUIDE}:{}: expected a fenced block",
        open + 1
    );
    let close = (open + 1..lines.len())
        .find(|&i| lines[i] == "```")
        .unwrap_or_else(|| panic!("{GUIDE}:{}: unclosed block", open + 1));
    open + 1..close
}

fn examples(lines: &[&str]) -> Vec<Example> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != MARKER {
            continue;
        }
        // The command: the `sh` block ending right above the marker.
        let close = i - 1;
        assert_eq!(
            lines[close],
            "```",
            "{GUIDE}:{}: no command block above",
            i + 1
        );
        let open = (0..close)
            .rev()
            .find(|&j| lines[j].starts_with("```"))
            .unwrap();
        let command = lines[open + 1..close]
            .iter()
            .map(|l| l.trim_end_matches('\\').trim())
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        assert_eq!(
            words.get(..2),
            Some(&["bootstrap".to_string(), "render".to_string()][..]),
            "{GUIDE}:{}: the block above a rendered example must be one `bootstrap render` command",
            i + 1
        );
        found.push(Example {
            words,
            body: fenced(lines, i + 1),
        });
    }
    found
}

fn run(words: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .current_dir(support::workspace_root())
        .args(&words[1..])
        .env_remove("ENTRAGATE_POLICY")
        .env_remove("ENTRAGATE_WASM")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{GUIDE}: `{}` failed: {}",
        words.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_deploy_guide_shows_what_bootstrap_render_produces() {
    let path = support::workspace_root().join(GUIDE);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let examples = examples(&lines);
    let formats: Vec<&str> = examples
        .iter()
        .filter_map(|e| {
            let i = e.words.iter().position(|w| w == "--format")?;
            e.words.get(i + 1).map(String::as_str)
        })
        .collect();
    for format in ["ecs", "kubernetes", "istio", "envoy-gateway"] {
        assert!(
            formats.contains(&format),
            "{GUIDE} shows no rendered --format {format} example"
        );
    }
    let mut blessed: Vec<String> = Vec::new();
    let mut next = 0;
    let mut drifted = Vec::new();
    for example in &examples {
        let rendered = run(&example.words);
        let shown = lines[example.body.clone()].join("\n");
        if shown.trim_end() != rendered.trim_end() {
            drifted.push(example.words.join(" "));
        }
        blessed.extend(
            lines[next..example.body.start]
                .iter()
                .map(|l| l.to_string()),
        );
        blessed.push(rendered.trim_end().to_string());
        next = example.body.end;
    }
    if std::env::var_os(BLESS_ENV).is_some() {
        blessed.extend(lines[next..].iter().map(|l| l.to_string()));
        std::fs::write(&path, blessed.join("\n") + "\n").unwrap();
        return;
    }
    assert!(
        drifted.is_empty(),
        "{GUIDE} differs from the renderer for:\n  {}\n(run with {BLESS_ENV}=1 to update the guide)",
        drifted.join("\n  ")
    );
}
