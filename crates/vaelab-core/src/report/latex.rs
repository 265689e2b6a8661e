//! The comparison and the paired differences as LaTeX tables (booktabs) for a paper:
//! `tables/comparison.tex` (mean ± std per variant, the best value of each column in
//! bold) and `tables/differences.tex` (variant − baseline with its 95% interval, in bold
//! where the interval excludes zero). `\usepackage{booktabs}`, then `\input` either file.
use super::aggregate::{Aggregate, Difference, Metric};
use super::format::{format_summary, format_value};

/// Escapes text for LaTeX, and writes the report's minus and ± as math.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '−' => out.push_str("$-$"),
            '±' => out.push_str(r"$\pm$"),
            '—' => out.push_str("---"),
            _ => out.push(c),
        }
    }
    out
}

fn bold(text: String) -> String {
    format!(r"\textbf{{{text}}}")
}

/// A booktabs tabular: left-aligned first `left` columns, right-aligned the rest.
fn tabular(header: &[String], rows: &[Vec<String>], left: usize) -> String {
    let columns: String = (0..header.len())
        .map(|i| if i < left { 'l' } else { 'r' })
        .collect();
    let line = |cells: &[String]| format!("{} \\\\\n", cells.join(" & "));
    let mut out = format!("\\begin{{tabular}}{{{columns}}}\n\\toprule\n");
    out += &line(header);
    out += "\\midrule\n";
    for row in rows {
        out += &line(row);
    }
    out + "\\bottomrule\n\\end{tabular}\n"
}

/// The mean that is best among the groups for `metric`, if any group has one.
fn best_mean(agg: &Aggregate, metric: Metric) -> Option<f64> {
    let means = agg
        .groups
        .iter()
        .map(|g| agg.summary(g, metric).mean)
        .filter(|m| m.is_finite());
    if metric.higher_is_better() {
        means.reduce(f64::max)
    } else {
        means.reduce(f64::min)
    }
}

/// `tables/comparison.tex`: the compared metrics, mean ± std over seeds, best in bold.
pub(super) fn comparison(agg: &Aggregate) -> String {
    let metrics = agg.shown(&Metric::compared());
    let mut header = vec!["variant".to_string(), "$n$".to_string()];
    header.extend(metrics.iter().map(|m| escape(m.title())));
    let best: Vec<Option<f64>> = metrics.iter().map(|&m| best_mean(agg, m)).collect();
    let rows: Vec<Vec<String>> = agg
        .groups
        .iter()
        .map(|group| {
            let mut row = vec![escape(&group.name), agg.finished(group).len().to_string()];
            for (&metric, best) in metrics.iter().zip(&best) {
                let summary = agg.summary(group, metric);
                let cell = escape(&format_summary(&summary, metric));
                row.push(if Some(summary.mean) == *best {
                    bold(cell)
                } else {
                    cell
                });
            }
            row
        })
        .collect();
    tabular(&header, &rows, 1)
}

/// `tables/differences.tex`: each variant minus its baseline, with the 95% interval.
pub(super) fn differences(agg: &Aggregate, differences: &[Difference]) -> String {
    let header: Vec<String> = [
        "variant",
        "baseline",
        "metric",
        "difference",
        "95\\% CI",
        "$n$",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = differences
        .iter()
        .map(|d| {
            let x = &d.difference;
            let interval = if x.half_width.is_finite() {
                format!("{} to {}", format_value(x.low()), format_value(x.high()))
            } else {
                "—".into()
            };
            let emphasise = |text: String| if x.excludes_zero() { bold(text) } else { text };
            vec![
                escape(&agg.groups[d.group].name),
                escape(&agg.groups[d.baseline].name),
                escape(d.metric.title()),
                emphasise(escape(&format_value(x.mean))),
                emphasise(escape(&interval)),
                x.n.to_string(),
            ]
        })
        .collect();
    tabular(&header, &rows, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_reports_symbols_become_math() {
        assert_eq!(
            escape("plain_b & 50% #1 −ELBO ± {x}"),
            r"plain\_b \& 50\% \#1 $-$ELBO $\pm$ \{x\}"
        );
        assert_eq!(
            escape(r"a\b~c^d—"),
            r"a\textbackslash{}b\textasciitilde{}c\textasciicircum{}d---"
        );
    }

    #[test]
    fn a_tabular_has_booktabs_rules_and_one_line_per_row() {
        let header = vec!["a".to_string(), "b".to_string()];
        let rows = vec![vec!["x".to_string(), "1".to_string()]];
        assert_eq!(
            tabular(&header, &rows, 1),
            "\\begin{tabular}{lr}\n\\toprule\na & b \\\\\n\\midrule\nx & 1 \\\\\n\\bottomrule\n\\end{tabular}\n"
        );
    }
}
