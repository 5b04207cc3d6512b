//! The result table, the ratio table, CSV and the SVG chart.

use crate::workloads::Row;
use crate::Settings;

fn find<'a>(rows: &'a [Row], w: &str, e: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.workload == w && r.engine == e)
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}

pub fn print_table(rows: &[Row], s: &Settings) {
    println!();
    println!(
        "| workload | engine | API | threads | ops/s | MB/s | p50 us | p99 us | p99.9 us | peak RSS MB | write amp (process) | write amp (engine) | stall ms | disk MB |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | `{}` | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} |",
            r.workload,
            r.engine,
            r.api,
            r.threads,
            r.ops_per_sec(),
            r.mb_per_sec(),
            r.hist.quantile_us(0.5),
            r.hist.quantile_us(0.99),
            r.hist.quantile_us(0.999),
            r.peak_rss_mb,
            opt(r.write_amp, 2),
            opt(r.engine_write_amp, 2),
            opt(r.stall_ms, 0),
            opt(r.disk_mb, 2)
        );
    }
    println!();
    println!("ops/s ratios (above 1: AiDb is faster):");
    println!();
    println!("| workload | AiDb / RocksDB | AiDb / fjall |");
    println!("|---|---:|---:|");
    for w in &s.benchmarks {
        let ratio = |other: &str| match (find(rows, w, "aidb"), find(rows, w, other)) {
            (Some(a), Some(b)) => format!("{:.2}", a.ops_per_sec() / b.ops_per_sec()),
            _ => "-".into(),
        };
        println!("| {w} | {} | {} |", ratio("rocksdb"), ratio("fjall"));
    }
    println!();
}

pub fn write_csv(rows: &[Row], path: &str) {
    let mut out = String::from(
        "workload,engine,api,threads,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p99_us,p999_us,peak_rss_mb,write_amp_process,write_amp_engine,stall_ms,disk_mb\n",
    );
    for r in rows {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "{},{},\"{}\",{},{},{:.3},{:.0},{:.2},{:.2},{:.2},{:.2},{:.1},{},{},{},{}\n",
            r.workload,
            r.engine,
            r.api.replace('"', "'"),
            r.threads,
            r.ops,
            r.secs,
            r.ops_per_sec(),
            r.mb_per_sec(),
            r.hist.quantile_us(0.5),
            r.hist.quantile_us(0.99),
            r.hist.quantile_us(0.999),
            r.peak_rss_mb,
            opt(r.write_amp),
            opt(r.engine_write_amp),
            opt(r.stall_ms),
            opt(r.disk_mb)
        ));
    }
    std::fs::write(path, out).unwrap_or_else(|e| crate::die(&format!("writing {path}: {e}")));
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// Grouped bars: for each workload, each engine's ops/s relative to the
/// fastest engine on it, labelled with the absolute figure.
pub fn write_svg(rows: &[Row], s: &Settings, versions: &[String], path: &str) {
    let colors = ["#d1495b", "#00798c", "#edae49", "#66a182"];
    let (bar_h, gap, label_w, chart_w) = (14.0, 10.0, 150.0, 520.0);
    let group_h = bar_h * s.engines.len() as f64 + gap;
    let top = 44.0 + 14.0 * versions.len() as f64;
    let height = top + 20.0 + group_h * s.benchmarks.len() as f64 + 20.0 * s.engines.len() as f64;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{height}' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n<text x='10' y='20' font-size='14'>db_bench, {} keys, {}-byte keys, {}-byte values (ops/s; bar = share of the fastest)</text>\n",
        label_w + chart_w + 140.0,
        s.num,
        s.key_size,
        s.value_size
    );
    for (i, v) in versions.iter().enumerate() {
        svg.push_str(&format!(
            "<text x='10' y='{}' font-size='10' fill='#555'>{}</text>\n",
            36.0 + 14.0 * i as f64,
            xml_escape(v)
        ));
    }
    for (wi, w) in s.benchmarks.iter().enumerate() {
        let y0 = top + wi as f64 * group_h;
        svg.push_str(&format!("<text x='10' y='{}'>{w}</text>\n", y0 + bar_h));
        let best = s
            .engines
            .iter()
            .filter_map(|e| find(rows, w, e).map(Row::ops_per_sec))
            .fold(0.0, f64::max);
        for (ei, e) in s.engines.iter().enumerate() {
            if let Some(r) = find(rows, w, e) {
                let width = chart_w * r.ops_per_sec() / best.max(1e-9);
                let y = y0 + ei as f64 * bar_h;
                svg.push_str(&format!(
                    "<rect x='{label_w}' y='{y}' width='{width:.1}' height='{}' fill='{}'/><text x='{}' y='{}'>{:.0}</text>\n",
                    bar_h - 2.0,
                    colors[ei % colors.len()],
                    label_w + width + 4.0,
                    y + bar_h - 4.0,
                    r.ops_per_sec()
                ));
            }
        }
    }
    let ly = top + 10.0 + group_h * s.benchmarks.len() as f64;
    for (ei, e) in s.engines.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x='{label_w}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{e}</text>\n",
            ly + ei as f64 * 18.0,
            colors[ei % colors.len()],
            label_w + 18.0,
            ly + ei as f64 * 18.0 + 10.0
        ));
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).unwrap_or_else(|e| crate::die(&format!("writing {path}: {e}")));
}
