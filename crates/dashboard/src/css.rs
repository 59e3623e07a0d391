//! The dashboard's stylesheet.

/// The dashboard's stylesheet, inlined in every page and report.
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827;background:#f3f4f6}
header.top{background:#111827;color:#f9fafb;padding:10px 24px;display:flex;gap:16px;align-items:baseline}
header.top a{color:#f9fafb;text-decoration:none;font-weight:600;font-size:16px}
header.top span{color:#9ca3af;font-size:12px}
main{padding:16px 24px;max-width:1280px;margin:0 auto}
h1{font-size:22px;margin:4px 0 2px}
h2{font-size:16px;margin:22px 0 8px}
.meta{color:#4b5563;font-size:13px;margin-bottom:8px}
.meta b{color:#111827}
form.pickers{display:flex;gap:12px;align-items:end;flex-wrap:wrap;background:#fff;padding:8px 12px;border-radius:8px;border:1px solid #e5e7eb;margin:8px 0}
form.pickers label{display:flex;flex-direction:column;font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
form.pickers select,form.pickers input{font:inherit;padding:3px 6px;border:1px solid #d1d5db;border-radius:4px;background:#fff}
form.pickers button{font:inherit;padding:4px 14px;border:0;border-radius:4px;background:#2563eb;color:#fff;cursor:pointer}
nav.tabs{display:flex;gap:2px;border-bottom:1px solid #d1d5db;margin:12px 0}
nav.tabs a{padding:7px 14px;color:#374151;text-decoration:none;border-radius:6px 6px 0 0}
nav.tabs a.active{background:#fff;border:1px solid #d1d5db;border-bottom-color:#fff;margin-bottom:-1px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
.card .k{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}
.card .s{font-size:12px;color:#6b7280}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:6px}
figure.chart svg{width:100%;height:auto;display:block}
figure.chart figcaption{font-size:12px;color:#6b7280;padding:2px 6px}
table{border-collapse:collapse;background:#fff;border:1px solid #e5e7eb;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #f3f4f6;text-align:left;vertical-align:top}
th{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em;background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1d4ed8}
.bad{color:#b91c1c;font-weight:600}.good{color:#15803d;font-weight:600}.muted{color:#9ca3af}
.flag{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:4px;padding:0 6px;margin:1px;font-size:12px}
.ok{display:inline-block;background:#dcfce7;color:#166534;border-radius:4px;padding:0 6px;font-size:12px}
.empty{background:#fff;border:1px dashed #d1d5db;border-radius:8px;padding:14px;color:#6b7280}
.heat{overflow-x:auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px}
.heat table{border:0;width:auto}
.heat td{padding:0;border:0;width:var(--cell,7px);min-width:var(--cell,7px);height:18px}
.heat td.name{width:auto;padding:0 10px 0 0;white-space:nowrap;font-size:12px;max-width:260px;overflow:hidden;text-overflow:ellipsis}
.heat th{padding:0 0 4px;background:#fff;font-size:10px;text-transform:none}
.legend{font-size:12px;color:#6b7280;margin:6px 0}
.legend i{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 3px 0 10px;border-radius:2px}
.error{background:#fff;border:1px solid #fecaca;border-radius:8px;padding:16px 20px}
table.models td{white-space:nowrap}
td.spark{padding:2px 10px}td.spark svg{width:160px;height:36px;display:block}
code{background:#e5e7eb;border-radius:3px;padding:0 4px}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px;font-size:12px}
pre code{background:none;padding:0}
td .s{font-size:12px;color:#6b7280}
.badge{display:inline-block;border-radius:4px;padding:0 7px;font-size:12px;font-weight:600}
.badge.firing{background:#fee2e2;color:#991b1b}.badge.pending{background:#fef3c7;color:#92400e}
.badge.resolved{background:#dcfce7;color:#166534}.badge.other{background:#e5e7eb;color:#374151}
.sev{font-size:12px;font-weight:600}.sev-critical{color:#b91c1c}.sev-warning{color:#b45309}.sev-info{color:#1d4ed8}.sev-other{color:#374151}
.alertbar{margin:8px 0;padding:8px 14px;border-radius:8px;font-size:13px}
.alertbar.firing{background:#fef2f2;border:1px solid #fecaca}.alertbar.pending{background:#fffbeb;border:1px solid #fde68a}
.count{display:inline-block;min-width:20px;text-align:center;border-radius:10px;padding:0 6px;font-size:12px;font-weight:600;color:#fff;text-decoration:none}
.count.firing{background:#dc2626}.count.pending{background:#d97706}
div.login{max-width:420px;margin:40px auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 24px}
form.login{display:flex;flex-direction:column;gap:10px}
form.login label{display:flex;flex-direction:column;font-size:12px;color:#6b7280;gap:4px}
form.login input{font:inherit;padding:5px 8px;border:1px solid #d1d5db;border-radius:4px}
.few{display:inline-block;background:#e5e7eb;color:#4b5563;border-radius:4px;padding:0 6px;font-size:12px}
p.few{display:block;padding:6px 10px}
.badge.partial{background:#e5e7eb;color:#4b5563;font-weight:500}
.heat td.partial{opacity:.45}
.heat tr.axis th{font-size:10px;color:#6b7280;border-left:1px solid #d1d5db;padding:0 0 2px 2px;white-space:nowrap;text-align:left;font-weight:400}
.legend i.partial{opacity:.45}
svg rect.hover:hover{fill-opacity:.06}
.grid.top{align-items:start}
.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px}
table.confusion{width:auto;border:0}
table.confusion td{min-width:64px;font-size:15px}
table.confusion th{white-space:nowrap}
form.window-picker{margin:4px 0 10px}
form.login button{font:inherit;padding:6px 14px;border:0;border-radius:4px;background:#2563eb;color:#fff;cursor:pointer;align-self:flex-start}
table.changes td{white-space:nowrap}
td.ack{min-width:190px}
form.ack{display:flex;flex-direction:column;gap:3px;margin-top:4px}
form.ack input{font:inherit;font-size:12px;padding:2px 6px;border:1px solid #d1d5db;border-radius:4px}
form.ack button{font:inherit;font-size:12px;padding:2px 10px;border:0;border-radius:4px;background:#2563eb;color:#fff;cursor:pointer;align-self:flex-start}
div.causes{margin:14px 0;padding:10px 14px;background:#fff;border:1px solid #e5e7eb;border-left:4px solid #b91c1c}
div.causes h3{font-size:14px;margin:8px 0 6px}
div.causes table{margin-bottom:6px}
"#;
