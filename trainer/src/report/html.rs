//! The report's page: the measured [`Report`] as HTML in `template.html`.

use std::fmt::Write as _;
use std::path::Path;

use super::{base64, escape, Report, TestResults};
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::visualize;

const TEMPLATE: &str = include_str!("template.html");

/// The whole page.
pub(super) fn page(r: &Report) -> Result<String> {
    let mut body = String::new();
    let mut images = 0;
    let ck = &r.ckpt;
    let _ = write!(
        body,
        "<h1>Kestrel training report: {}</h1>\n<p class=\"meta\">checkpoint <code>{}</code>; \
         data <code>{}</code>; {} epochs on {} training images, batch {}, seed {}",
        escape(&ck.arch.name),
        escape(&r.checkpoint.display().to_string()),
        escape(&ck.data_dir.display().to_string()),
        ck.epochs_done,
        ck.train_samples,
        ck.train.batch,
        ck.train.seed,
    );
    if let Some(acc) = ck.test_accuracy {
        let _ = write!(body, "; float test accuracy <b>{:.2}%</b>", 100.0 * acc);
    }
    body.push_str("</p>\n");

    body.push_str("<h2>Training</h2>\n");
    let curves = curves(ck)?;
    if curves.is_empty() {
        body.push_str("<p class=\"note\">No epochs recorded.</p>\n");
    } else {
        body.push_str("<div class=\"plots\">\n");
        for (title, png) in &curves {
            body.push_str(&img_tag(png, "plot", title, "plot"));
            body.push('\n');
            images += 1;
        }
        body.push_str("</div>\n");
    }

    body.push_str("<h2>Layers</h2>\n");
    layer_table(r, &mut body);

    body.push_str("<h2>First-layer filters</h2>\n");
    match filters_png(ck, &r.checkpoint)? {
        Ok((png, width)) => {
            // Shown at twice its size (at most 1000 pixels wide), pixels kept sharp.
            let tag = img_tag(&png, "filters", "first-layer filters", "filters");
            let shown = (2 * width).min(1000);
            body.push_str(&tag.replacen("<img ", &format!("<img width=\"{shown}\" "), 1));
            body.push_str(
                "\n<p class=\"meta\">Each filter scaled by its largest magnitude; 0 is mid-gray.</p>\n",
            );
            images += 1;
        }
        Err(why) => {
            let _ = writeln!(body, "<p class=\"note\">{}</p>", escape(&why));
        }
    }

    body.push_str("<h2>Test split</h2>\n");
    match &r.test {
        Ok(t) => test_section(t, &ck.classes, &mut body),
        Err(why) => {
            let _ = writeln!(
                body,
                "<p class=\"note\">The test split could not be read, so the confusion matrix, \
                 activation statistics and export measurements are left out: {}</p>",
                escape(why)
            );
        }
    }

    body.push_str("<h2>Exported models</h2>\n");
    exports_section(r, &mut body);

    Ok(TEMPLATE
        .replace(
            "{{title}}",
            &format!("Kestrel report: {}", escape(&ck.arch.name)),
        )
        .replace("{{expected_images}}", &images.to_string())
        .replace("{{body}}", &body))
}

/// A named line of (x, y) points.
type Series<'a> = (&'a str, &'a [(f64, f64)]);

/// The training curves as (title, PNG): loss, error and learning rate per epoch.
fn curves(ck: &Checkpoint) -> Result<Vec<(String, Vec<u8>)>> {
    if ck.history.is_empty() {
        return Ok(Vec::new());
    }
    let per_epoch = |f: &dyn Fn(&crate::checkpoint::EpochLog) -> Option<f32>| -> Vec<(f64, f64)> {
        ck.history
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v as f64)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let loss = per_epoch(&|e| Some(e.train_loss));
    let train_err = per_epoch(&|e| Some(100.0 * e.train_error));
    let val_err = per_epoch(&|e| e.val_error.map(|v| 100.0 * v));
    let lr = per_epoch(&|e| Some(e.lr));
    let mut errors: Vec<Series> = vec![("train", &train_err)];
    if !val_err.is_empty() {
        errors.push(("validation", &val_err));
    }
    let plots: [(&str, Vec<Series>, &str); 3] = [
        (
            "Training loss",
            vec![("train loss", &loss)],
            "cross-entropy",
        ),
        ("Error", errors, "error (%)"),
        (
            "Learning rate",
            vec![("learning rate", &lr)],
            "learning rate",
        ),
    ];
    let mut out = Vec::new();
    for (title, series, y) in plots {
        let series: Vec<_> = series.into_iter().filter(|(_, p)| !p.is_empty()).collect();
        if series.is_empty() {
            continue;
        }
        let img = visualize::curve_image(title, &series, "epoch", y)?;
        out.push((title.to_string(), visualize::encode_png(&img)?));
    }
    Ok(out)
}

fn layer_table(r: &Report, body: &mut String) {
    body.push_str(
        "<table>\n<tr><th>#</th><th class=\"l\">op</th><th>input</th><th>output</th>\
         <th>params</th><th>MACs</th><th>mean</th><th>std</th><th>zeros</th><th>max |x|</th></tr>\n",
    );
    let dims = |d: [usize; 3]| format!("{}×{}×{}", d[0], d[1], d[2]);
    for (i, l) in r.layers.iter().enumerate() {
        let _ = write!(
            body,
            "<tr><td>{i}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            l.op,
            dims(l.input),
            dims(l.output),
            l.params,
            l.macs
        );
        match l.stats {
            Some(s) => {
                let _ = writeln!(
                    body,
                    "<td>{:.3}</td><td>{:.3}</td><td>{:.1}%</td><td>{:.3}</td></tr>",
                    s.mean,
                    s.std,
                    100.0 * s.zeros,
                    s.max_abs
                );
            }
            None => body.push_str("<td colspan=\"4\">–</td></tr>\n"),
        }
    }
    let _ = writeln!(
        body,
        "<tr><th></th><th class=\"l\">total</th><th></th><th></th><th>{}</th><th>{}</th>\
         <th colspan=\"4\"></th></tr>\n</table>",
        r.layers.iter().map(|l| l.params).sum::<usize>(),
        r.layers.iter().map(|l| l.macs).sum::<u64>()
    );
    let sample = match &r.test {
        Ok(t) => format!(
            "Activation statistics of each layer's output (float network, eval mode) over the first {} test images.",
            super::ACTIVATION_SAMPLE.min(t.predictions.len())
        ),
        Err(_) => "No activation statistics: the test split could not be read.".into(),
    };
    let _ = writeln!(body, "<p class=\"meta\">{sample}</p>");
}

fn test_section(t: &TestResults, names: &[String], body: &mut String) {
    let classes = t.confusion.len();
    let name = |c: usize| escape(names.get(c).map_or(&c.to_string(), |s| s));
    let _ = writeln!(
        body,
        "<p>Float network: <b>{:.2}%</b> of {} test images. Rows: true class; columns: \
         predicted class.</p>",
        100.0 * t.accuracy(),
        t.predictions.len()
    );
    body.push_str("<table class=\"confusion\">\n<tr><th class=\"l\">true \\ predicted</th>");
    for c in 0..classes {
        let _ = write!(body, "<th>{}</th>", name(c));
    }
    body.push_str("<th>accuracy</th></tr>\n");
    for (c, row) in t.confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let _ = write!(body, "<tr><th class=\"l\">{}</th>", name(c));
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            // Blue for the diagonal, red for confusions, deeper for a larger share.
            let (rgb, alpha) = if p == c {
                ("31,119,180", share)
            } else {
                ("214,39,40", (4.0 * share).min(1.0))
            };
            let _ = write!(
                body,
                "<td style=\"background:rgba({rgb},{alpha:.2})\">{count}</td>"
            );
        }
        let _ = writeln!(
            body,
            "<td><b>{:.1}%</b></td></tr>",
            100.0 * row[c] as f64 / total
        );
    }
    body.push_str("</table>\n");
}

fn exports_section(r: &Report, body: &mut String) {
    if r.exports.is_empty() {
        body.push_str(
            "<p class=\"meta\">None yet: <code>kestrel export</code> adds each model it writes \
             (or <code>kestrel report --checkpoint C --model M</code>).</p>\n",
        );
        return;
    }
    body.push_str(
        "<table>\n<tr><th class=\"l\">model</th><th class=\"l\">precision</th><th>bytes</th>\
         <th>images</th><th>accuracy (runtime)</th><th>agreement with float</th></tr>\n",
    );
    for e in &r.exports {
        let _ = writeln!(
            body,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td>{}</td>\
             <td>{}</td><td>{:.2}%</td><td>{:.2}%</td></tr>",
            escape(&e.model.display().to_string()),
            escape(&e.precision),
            e.model_bytes,
            e.n,
            100.0 * e.accuracy,
            100.0 * e.agreement
        );
    }
    body.push_str(
        "</table>\n<p class=\"meta\">Accuracy of the model file on the runtime crate; agreement: \
         the share of test images where its top class equals the float network's.</p>\n",
    );
}

/// A PNG `data:` URI `<img>` the page's script checks (`kind`: `plot` or `filters`).
fn img_tag(png: &[u8], kind: &str, alt: &str, class: &str) -> String {
    format!(
        r#"<img data-check="{kind}" class="{class}" alt="{}" src="data:image/png;base64,{}">"#,
        escape(alt),
        base64(png)
    )
}

/// The first convolution's filters as a PNG, or why there are none.
/// With its width in pixels.
fn filters_png(
    ckpt: &Checkpoint,
    path: &Path,
) -> Result<std::result::Result<(Vec<u8>, u32), String>> {
    let banks = match visualize::convnet_filters(ckpt, path) {
        Ok(b) => b,
        Err(Error::NoFilters { message, .. }) => return Ok(Err(message)),
        Err(e) => return Err(e),
    };
    let img = visualize::render_banks(&banks, &visualize::GridOptions::default())?;
    Ok(Ok((visualize::encode_png(&img)?, img.width())))
}
