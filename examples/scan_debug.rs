use std::io::BufRead;
fn main() {
    let d = mcp_pii_gateway::detect::Detector::builtin();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("line");
        let spans = d.find(&line);
        let v: Vec<String> = spans
            .iter()
            .map(|s| format!("{}:{:?}", s.kind, &line[s.start..s.end]))
            .collect();
        println!("{line:?} -> {v:?}");
    }
}
