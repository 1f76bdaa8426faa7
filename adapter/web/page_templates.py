"""The page's HTML: Jinja2 templates (Flask ships Jinja2) kept as Python strings, so the package
needs no data files. Autoescaped: every value from a sheet, a contract or a file name is text.

No script, no outside request (no CDN, no web font: hospitals run offline), system fonts only.
Accessible: `lang`, a skip link, one h1 and ordered headings, real form controls with labels and
hints (`aria-describedby`), a fieldset for the output choice, tables with captions and header
cells, a visible focus ring, text contrast of at least 7:1, and errors as an alert listing each
problem in words.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

STYLE = """
:root { color: #1a1a1a; background: #ffffff; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  font-size: 1.0625rem; line-height: 1.5; margin: 0; }
.wrap { max-width: 62rem; margin: 0 auto; padding: 0 1.25rem; }
header.site { background: #123d63; color: #ffffff; padding: 0.6rem 0; }
header.site p { margin: 0; font-weight: 600; }
header.site a { color: #ffffff; }
main { padding: 1rem 0 3rem; }
h1 { font-size: 1.75rem; margin: 0.8rem 0 0.4rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #c8ccd0;
  padding-bottom: 0.2rem; }
a { color: #0a4f8f; text-underline-offset: 0.15em; }
a:hover { color: #06325c; }
:focus-visible { outline: 3px solid #b34700; outline-offset: 2px; }
.skip { position: absolute; left: -999rem; }
.skip:focus { left: 1rem; top: 0.5rem; background: #ffffff; color: #0a4f8f; padding: 0.4rem;
  z-index: 2; }
.lead { font-size: 1.125rem; max-width: 48rem; }
.hint { color: #3d4349; margin: 0.1rem 0 0.4rem; font-size: 0.97rem; max-width: 46rem; }
form .field { margin: 1.2rem 0; }
label, legend { font-weight: 600; }
fieldset { border: 1px solid #8a9197; border-radius: 4px; padding: 0.6rem 1rem 0.8rem;
  margin: 1.2rem 0; max-width: 46rem; }
.choice { margin: 0.45rem 0; }
.choice label { font-weight: 400; }
.choice .hint { margin-left: 1.9rem; }
input[type=radio] { width: 1.15rem; height: 1.15rem; vertical-align: -0.15rem;
  margin-right: 0.5rem; }
input[type=file], input[type=text], select { display: block; font: inherit; padding: 0.45rem;
  border: 2px solid #5c6670; border-radius: 4px; background: #f7f8f9; width: 100%;
  max-width: 34rem; color: inherit; }
button, .button { display: inline-block; font: inherit; font-weight: 600; color: #ffffff;
  background: #0a4f8f; border: 2px solid #0a4f8f; border-radius: 4px; padding: 0.5rem 1.2rem;
  text-decoration: none; cursor: pointer; }
button:hover, .button:hover { background: #06325c; color: #ffffff; }
.alert { border-left: 6px solid #a3161a; background: #fdf0f0; padding: 0.6rem 1rem;
  margin: 1rem 0; }
.alert h2 { border: 0; margin-top: 0.2rem; font-size: 1.15rem; }
.notice { border-left: 6px solid #8a5a00; background: #fff8e6; padding: 0.5rem 1rem; }
.ok { border-left: 6px solid #1d6b35; background: #eef8f1; padding: 0.5rem 1rem; }
dl.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr));
  gap: 0.6rem; margin: 0.8rem 0; }
dl.counts div { border: 1px solid #c8ccd0; border-radius: 4px; padding: 0.5rem 0.8rem; }
dl.counts dt { font-size: 0.95rem; color: #3d4349; }
dl.counts dd { margin: 0; font-size: 1.6rem; font-weight: 700; }
table { border-collapse: collapse; margin: 0.6rem 0; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #c8ccd0; padding: 0.35rem 0.6rem; text-align: left;
  vertical-align: top; }
thead th { background: #eef1f4; }
td.num, th.num { text-align: right; white-space: nowrap; }
code { font-size: 0.95em; background: #f1f3f5; padding: 0 0.2rem; border-radius: 3px;
  white-space: nowrap; }
footer { border-top: 1px solid #c8ccd0; color: #3d4349; font-size: 0.95rem; padding: 1rem 0 2rem; }
"""

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ title }} - fms-fhir</title>
<style>{{ style|safe }}</style>
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header class="site"><div class="wrap"><p><a href="{{ base }}/">fms-fhir</a>: spreadsheets of
fibromyalgia follow-up to FHIR R4</p></div></header>
<main id="main" class="wrap">
{% block main %}{% endblock %}
</main>
<footer><div class="wrap"><p>fms-fhir {{ version }}. This page and the reports it opens load
nothing from any other server; the sheet is converted on this server only.</p></div></footer>
</body>
</html>
"""

FORM = """{% extends "base" %}{% block main %}
<h1>Convert a spreadsheet to FHIR</h1>
<p class="lead">Choose a sheet of follow-up visits (one row per visit). It is converted into
FHIR R4 resources: the answers, the scores and the LDN doses. You then see what happened to every
row, can download the FHIR, and can open each patient's follow-up report.</p>
{% if problems %}
<div class="alert" role="alert" id="problems">
<h2>{{ problem_title }}</h2>
<ul>{% for problem in problems %}<li>{{ problem }}</li>{% endfor %}</ul>
</div>
{% endif %}
<form method="post" action="{{ base }}/" enctype="multipart/form-data">
<div class="field">
<label for="file">Spreadsheet (CSV or XLSX)</label>
<p class="hint" id="file-hint">At most {{ max_rows }} rows. Without a contract the headers must
be those of the template (<code>patient_id</code>, <code>visit_date</code>, the item ids).</p>
<input type="file" id="file" name="file" required aria-describedby="file-hint"
 accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet">
</div>
<div class="field">
<label for="contract">Sheet contract (optional, YAML or JSON)</label>
<p class="hint" id="contract-hint">Names the columns of a sheet that does not use the
template's headers: which column holds the patient, the date, each item; date formats; the
patient identifier system.</p>
<input type="file" id="contract" name="contract" aria-describedby="contract-hint"
 accept=".yaml,.yml,.json,application/yaml,application/json,text/yaml">
</div>
<div class="field">
<label for="patient-system">Patient identifier system (optional)</label>
<p class="hint" id="patient-system-hint">The URI of the register the patient numbers come from,
e.g. <code>urn:oid:1.2.3.4</code> or <code>https://hospital.example/mrn</code>. It replaces the
contract's; without either, a system under this service's own address is used.</p>
<input type="text" id="patient-system" name="patient-system" value="{{ chosen.patient_system }}"
 aria-describedby="patient-system-hint" autocomplete="off" spellcheck="false" maxlength="500">
</div>
<div class="field">
<label for="bundle-type">Bundle type</label>
<p class="hint" id="bundle-type-hint">Transaction: a FHIR server applies each Bundle whole or
not at all. Batch: entry by entry, for servers that limit the size of a transaction. NDJSON
output holds no Bundles.</p>
<select id="bundle-type" name="bundle-type" aria-describedby="bundle-type-hint">
{% for value, label in bundle_types %}
<option value="{{ value }}"{% if value == chosen.bundle_type %} selected{% endif %}>{{ label }}</option>
{% endfor %}
</select>
</div>
<fieldset>
<legend>Output</legend>
{% for value, label, hint in formats %}
<div class="choice">
<input type="radio" id="format-{{ value }}" name="format" value="{{ value }}"
 aria-describedby="format-{{ value }}-hint"{% if value == chosen.format %} checked{% endif %}>
<label for="format-{{ value }}">{{ label }}</label>
<p class="hint" id="format-{{ value }}-hint">{{ hint }}</p>
</div>
{% endfor %}
</fieldset>
<p><button type="submit">Convert</button></p>
</form>
<h2>Good to know</h2>
<ul>
<li>The result (counts, rejected rows, the download and the reports) is kept on this server for
{{ ttl }} and then deleted. Its address is a long random code: anyone who has it can open the
result until then, so share it only as you would the sheet.</li>
<li>Integration engines use the same conversion through the HTTP API
(<code>POST /$convert-sheet</code>, see <a href="{{ base }}/openapi.json">openapi.json</a>).</li>
</ul>
{% endblock %}
"""

RESULT = """{% extends "base" %}{% block main %}
<h1>Converted: {{ meta.file }}</h1>
<p>Output: {{ format_label }}{% if meta.format != "ndjson" and meta.bundle_type %}, Bundles
of type {{ meta.bundle_type }}{% endif %}{% if meta.patient_system %}; patient identifier system
<code>{{ meta.patient_system }}</code>{% endif %}. This result is kept until {{ expires }} and then
deleted.
<a href="{{ base }}/">Convert another sheet</a>.</p>
<h2 id="rows">Rows</h2>
<dl class="counts">
<div><dt>Rows read</dt><dd id="rows-read">{{ meta.counts["rows-read"] }}</dd></div>
<div><dt>Converted</dt><dd id="rows-converted">{{ meta.counts["rows-converted"] }}</dd></div>
<div><dt>Rejected</dt><dd id="rows-rejected">{{ meta.counts["rows-rejected"] }}</dd></div>
<div><dt>Blank rows skipped</dt><dd id="rows-blank">{{ meta.counts["rows-blank"] }}</dd></div>
</dl>
{% if meta.counts["rows-rejected"] %}
<p class="notice">{{ meta.counts["rows-rejected"] }} {{ "row was" if meta.counts["rows-rejected"]
== 1 else "rows were" }} not converted: see <a href="#rejected">Rejected rows</a> for the row,
the column and the reason. Correct the sheet and convert it again.</p>
{% else %}
<p class="ok">Every row that was read was converted.</p>
{% endif %}
<p>Resources written: {{ resources or "none" }}.</p>

<h2 id="download">Download the FHIR</h2>
{% if meta.zip_bytes %}
<p><a class="button" href="{{ base }}/results/{{ id }}/fhir.zip" download="{{ meta.zip_name }}">
Download {{ meta.zip_name }} ({{ zip_size }})</a></p>
<p class="hint">{{ contents }} The file <code>row-report.json</code> in it is the row report as
an OperationOutcome.</p>
{% else %}
<p>Nothing to download: no row was converted.</p>
{% endif %}

<h2 id="patients">Patients</h2>
{% if patients %}
<table>
<caption>Follow-up reports ({{ patients|length }} {{ "patient" if patients|length == 1 else
"patients" }})</caption>
<thead><tr><th scope="col">Patient</th><th scope="col" class="num">Visits with scores</th>
<th scope="col">Report</th></tr></thead>
<tbody>
{% for patient in patients %}
<tr><th scope="row">{{ patient.label }}</th><td class="num">{{ patient.visits }}</td>
<td><a href="{{ base }}/results/{{ id }}/patients/{{ loop.index }}">Follow-up report of
{{ patient.label }}</a></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No follow-up report: {{ meta.reports_note or "no patient has score Observations" }}.</p>
{% endif %}

<h2 id="rejected">Rejected rows</h2>
{% if meta.rejected %}
<table id="rejected-rows">
<caption>Rows not converted, with the reason for each ({{ meta.counts["rows-rejected"] }}
{{ "row" if meta.counts["rows-rejected"] == 1 else "rows" }})</caption>
<thead><tr><th scope="col" class="num">Row</th><th scope="col">Column</th>
<th scope="col">Reason</th></tr></thead>
<tbody>
{% for issue in meta.rejected %}
<tr><td class="num">{{ issue.row }}</td><td>{{ issue.column }}</td><td>{{ issue.reason }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if meta.rejected_total > meta.rejected|length %}
<p>{{ meta.rejected_total - meta.rejected|length }} more reasons are not listed here; all are in
<code>row-report.json</code> in the download.</p>
{% endif %}
{% else %}
<p>No row was rejected.</p>
{% endif %}

<h2 id="warnings">Warnings</h2>
{% if meta.warnings %}
<table id="warning-rows">
<caption>Converted, but worth a look ({{ meta.warnings_total }})</caption>
<thead><tr><th scope="col" class="num">Row</th><th scope="col">Column</th>
<th scope="col">Warning</th></tr></thead>
<tbody>
{% for issue in meta.warnings %}
<tr><td class="num">{{ issue.row }}</td><td>{{ issue.column }}</td><td>{{ issue.reason }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if meta.warnings_total > meta.warnings|length %}
<p>{{ meta.warnings_total - meta.warnings|length }} more warnings are not listed here.</p>
{% endif %}
{% else %}
<p>No warnings.</p>
{% endif %}
{% endblock %}
"""

ERROR = """{% extends "base" %}{% block main %}
<h1>{{ heading }}</h1>
<div class="alert" role="alert">
<ul>{% for problem in problems %}<li>{{ problem }}</li>{% endfor %}</ul>
</div>
<p><a href="{{ base }}/">Convert a sheet</a></p>
{% endblock %}
"""

ENVIRONMENT = Environment(
    loader=DictLoader({"base": BASE, "form": FORM, "result": RESULT, "error": ERROR}),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> str:
    from adapter import __version__

    return ENVIRONMENT.get_template(template).render(style=STYLE, version=__version__, **values)
