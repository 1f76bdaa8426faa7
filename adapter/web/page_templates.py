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
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
table.mapping select { width: auto; min-width: 15rem; max-width: 21rem; }
table.mapping td:last-child { min-width: 10rem; }
table.mapping td.samples { color: #3d4349; }
.sure { color: #1d6b35; font-weight: 600; }
.unsure { color: #8a5a00; font-weight: 600; }
select[aria-invalid=true] { border-color: #a3161a; }
.actions button { margin: 0 0.6rem 0.6rem 0; }
button.secondary { background: #ffffff; color: #0a4f8f; }
button.secondary:hover { background: #eef1f4; color: #06325c; }
pre { background: #f1f3f5; padding: 0.6rem 0.8rem; border-radius: 4px; overflow-x: auto;
  font-size: 0.95rem; }
pre code { white-space: pre; background: none; padding: 0; }
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
<p class="hint" id="file-hint">At most {{ max_rows }} rows. Your own headers are fine: when
they are not the template's (<code>patient_id</code>, <code>visit_date</code>, the item ids),
the next page shows each column for you to match.</p>
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
<li>Your own workbook can be converted as it is: when its headers are not the template's, the
page shows each column and what it seems to hold, for you to check. You can then download the
<a href="{{ base }}/help/contract">sheet contract</a> it makes, for next time.</li>
<li>Starting a new sheet? <a href="{{ base }}/template.xlsx" download>Download the template
(XLSX)</a>: one column per answer, and a second worksheet that explains each column.</li>
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
{% if meta.contract %}
<p class="ok">Converted with the columns as you matched them.
<a href="{{ base }}/results/{{ id }}/contract.yaml" download="{{ meta.contract }}">Download this
contract ({{ meta.contract }})</a> and upload it with the sheet next time: the columns are then
read the same way without this step.
{% if meta.mapping %}<a href="{{ base }}/mappings/{{ meta.mapping }}">Change the columns</a>.
{% endif %}</p>
{% endif %}
<h2 id="rows">Rows</h2>
<dl class="counts">
<div><dt>Rows read</dt><dd id="rows-read">{{ meta.counts["rows-read"] }}</dd></div>
<div><dt>Converted</dt><dd id="rows-converted">{{ meta.counts["rows-converted"] }}</dd></div>
{% if meta.counts["rows-partial"] %}
<div><dt>Of them in part</dt><dd id="rows-partial">{{ meta.counts["rows-partial"] }}</dd></div>
{% endif %}
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

{% if meta.partial %}
<h2 id="partial">Rows converted in part</h2>
<table id="partial-rows">
<caption>Visits converted without the instrument (or the dose) a cell was wrong in
({{ meta.counts["rows-partial"] }} {{ "row" if meta.counts["rows-partial"] == 1 else "rows"
}})</caption>
<thead><tr><th scope="col" class="num">Row</th><th scope="col">Column</th>
<th scope="col">Reason</th></tr></thead>
<tbody>
{% for issue in meta.partial %}
<tr><td class="num">{{ issue.row }}</td><td>{{ issue.column }}</td><td>{{ issue.reason }}</td></tr>
{% endfor %}
</tbody>
</table>
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

MAPPING = """{% extends "base" %}{% block main %}
<h1>Match the columns of {{ file }}</h1>
<p class="lead">Each column of the sheet is listed with a few of its values and what it seems to
hold. Check each choice and change the ones that are wrong (a column you do not need: "ignore").
Then preview the first rows, and convert.</p>
{% if problems %}
<div class="alert" role="alert" id="problems">
<h2>{{ problem_title }}</h2>
<ul>{% for problem in problems %}<li>{{ problem }}</li>{% endfor %}</ul>
</div>
{% endif %}
{% if reasons %}
<div class="notice" id="reasons">
<p>Why this step: {{ "the contract given" if contract_given else "the template" }} does not
fit this sheet.</p>
<ul>{% for reason in reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
</div>
{% endif %}
{% if notes %}
<ul class="hint">{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% endif %}

{% if worksheets|length > 1 %}
<form method="get" action="{{ base }}/mappings/{{ id }}">
<div class="field">
<label for="worksheet">Worksheet</label>
<p class="hint" id="worksheet-hint">The workbook has {{ worksheets|length }} worksheets; the
one read is the one whose columns matched best.</p>
<select id="worksheet" name="worksheet" aria-describedby="worksheet-hint">
{% for name in worksheets %}
<option value="{{ name }}"{% if name == worksheet %} selected{% endif %}>{{ name }}</option>
{% endfor %}
</select>
</div>
<p><button type="submit" class="secondary">Read this worksheet</button></p>
</form>
{% endif %}

<form method="post" action="{{ base }}/mappings/{{ id }}">
{% if worksheet %}<input type="hidden" name="worksheet" value="{{ worksheet }}">{% endif %}
<p id="header-rows">{% if header_rows > 1 %}The header is rows {{ header_row }} and
{{ header_row + 1 }}: the group headers of row {{ header_row }} (merged cells) are joined to the
column headers below them{% else %}The header is row {{ header_row }}{% endif %}{% if header_row
> 1 %}; the rows above it are skipped{% endif %}. The rows after it are the visits.</p>
<table class="mapping" id="mapping">
<caption>The columns{% if worksheet %} of the worksheet {{ worksheet }}{% endif %} ({{ rows|length
}})</caption>
<thead><tr><th scope="col">Column</th><th scope="col">Header</th>
<th scope="col">Sample values</th><th scope="col">Holds</th>
<th scope="col">How sure</th></tr></thead>
<tbody>
{% for row in rows %}
<tr>
<td>{{ row.letter }}</td>
<th scope="row" id="{{ row.field }}-header">{{ row.header or "(no header)" }}</th>
<td class="samples">{{ row.samples|join(", ") or "(empty)" }}</td>
<td>
{% if row.fixed %}
{{ "Read by REDCap's rules" if row.header else "Ignored: a column needs a header" }}
{% else %}
<label class="visually-hidden" for="{{ row.field }}">What column {{ row.letter }}
"{{ row.header }}" holds</label>
<select id="{{ row.field }}" name="{{ row.field }}"
 aria-describedby="{{ row.field }}-header {{ row.field }}-sure"
{%- if row.field in invalid %} aria-invalid="true"{% endif %}>
<option value="ignore"{% if row.chosen == "ignore" %} selected{% endif %}>ignore</option>
{% for group in groups %}
<optgroup label="{{ group.label }}">
{% for choice in group.choices %}
<option value="{{ choice.value }}"{% if choice.value == row.chosen %} selected{% endif %}>
{{- choice.label }}</option>
{% endfor %}
</optgroup>
{% endfor %}
</select>
{% endif %}
</td>
<td id="{{ row.field }}-sure">
{% if row.fixed %}{{ row.note }}
{% elif row.suggested != "ignore" %}<span class="{{ 'sure' if row.confidence >= 0.9 else
'unsure' }}">{{ "%.0f"|format(row.confidence * 100) }}%</span>{% if row.runner_up %};
runner-up {{ row.runner_up }} ({{ "%.0f"|format(row.runner_up_confidence * 100) }}%){% endif %}
{% else %}not matched: {{ row.note }}
{% endif %}
{% if row.chosen != row.suggested and not row.fixed %}<br>changed (suggested:
{{ labels.get(row.suggested, row.suggested) }}){% endif %}
</td>
</tr>
{% endfor %}
</tbody>
</table>
<div class="field">
<label for="date-format">Date format of the visit date</label>
<p class="hint" id="date-format-hint">As Python writes it: <code>%d.%m.%Y</code> reads
31.01.2025, <code>%d/%m/%Y</code> 31/01/2025. Empty: dates written 2025-01-31 and date
cells.</p>
<input type="text" id="date-format" name="date-format" value="{{ date_format }}"
 aria-describedby="date-format-hint" autocomplete="off" spellcheck="false" maxlength="100">
</div>
<div class="field choice">
<input type="checkbox" id="decimal-comma" name="decimal-comma" value="yes"
 aria-describedby="decimal-comma-hint"{% if decimal_comma %} checked{% endif %}>
<label for="decimal-comma">Numbers are written with a decimal comma (4,5)</label>
<p class="hint" id="decimal-comma-hint">Doses such as "4,5 mg" are read as 4.5 mg.</p>
</div>
<p class="actions">
<button type="submit" name="action" value="preview"
 formaction="{{ base }}/mappings/{{ id }}#preview">Preview the first rows</button>
<button type="submit" name="action" value="convert">Convert</button>
<button type="submit" name="action" value="contract" class="secondary">Download the
contract</button>
</p>
</form>

{% if preview %}
<h2 id="preview">Preview of the first rows</h2>
{% if preview.problems %}
<div class="alert" role="alert">
<p>The sheet cannot be converted with these choices:</p>
<ul>{% for problem in preview.problems %}<li>{{ problem }}</li>{% endfor %}</ul>
</div>
{% else %}
<table id="preview-rows">
<caption>The first {{ preview.rows|length }} rows as they will be converted (nothing is kept
yet)</caption>
<thead><tr><th scope="col" class="num">Row</th><th scope="col">Patient</th>
<th scope="col">Date</th><th scope="col">Instruments converted</th>
<th scope="col">Result</th><th scope="col">Problems</th></tr></thead>
<tbody>
{% for row in preview.rows %}
<tr><td class="num">{{ row.row }}</td><td>{{ row.patient }}</td><td>{{ row.date }}</td>
<td>{{ row.instruments|join(", ") or "none" }}</td><td>{{ row.status }}</td>
<td>{% if row.problems %}<ul>{% for p in row.problems %}<li>{{ p }}</li>{% endfor %}</ul>
{% else %}none{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% endif %}
<p><a href="{{ base }}/help/contract">What a sheet contract is</a> ·
<a href="{{ base }}/">Convert another sheet</a></p>
{% endblock %}
"""

HELP = """{% extends "base" %}{% block main %}
<h1>Sheet contracts</h1>
<p class="lead">A sheet contract is a short text file (YAML) that says how to read a sheet whose
columns are not those of the template: which column holds the patient, the visit date and the
LDN dose, and which item or score each other column holds.</p>
<p>You do not have to write one: upload the sheet, check the columns the page suggests, and
download the contract it makes. Upload that file with the sheet next time, and the columns are
read the same way at once. The same file works on the command line
(<code>fms-fhir convert-sheet SHEET --contract CONTRACT.yaml</code>, and
<code>fms-fhir contract suggest SHEET</code> writes a draft) and in the HTTP API
(<code>POST /$convert-sheet</code>, the <code>contract</code> part).</p>
<h2>What it says</h2>
<ul>
<li><code>sheet</code>: the worksheet, by name or position (1 is the first); without it, the
first that holds rows.</li>
<li><code>header</code>: the row of the headers (<code>row</code>), rows above it skipped;
<code>rows: 2</code> when group headers (merged cells, "FIQR" over its columns) stand above
it: each column is then named by its group and its own header.</li>
<li><code>patient</code>, <code>visit_date</code> (with its <code>formats</code>) and
<code>ldn_dose</code>: their columns. Doses may carry their unit ("4,5 mg").</li>
<li><code>decimal_comma: true</code>: numbers written 4,5.</li>
<li><code>columns</code>: each other column's header and the item id or score code it holds;
<code>values</code> maps a column's own words to answers (ja: true, nein: false).</li>
</ul>
<h2>An example</h2>
<pre><code>{{ example }}</code></pre>
<p>The template's own column names are those of <a href="{{ base }}/template.xlsx"
download>the template (XLSX)</a>; its second worksheet explains each column.
<a href="{{ base }}/">Convert a sheet</a>.</p>
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
    loader=DictLoader(
        {
            "base": BASE,
            "form": FORM,
            "result": RESULT,
            "error": ERROR,
            "mapping": MAPPING,
            "help": HELP,
        }
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> str:
    from adapter import __version__

    return ENVIRONMENT.get_template(template).render(style=STYLE, version=__version__, **values)
