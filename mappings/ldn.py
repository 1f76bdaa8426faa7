"""Low-dose naltrexone (LDN): the facts behind the MedicationStatement (docs/instruments.md, LDN).

No RxNorm concept exists for 1.5-4.5 mg naltrexone (US oral naltrexone is 50 mg tablets; LDN is
compounded), so the ingredient is coded and the dose is carried in each dosage.
"""

from decimal import Decimal

from adapter.instrument import Code

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"

NALTREXONE = Code("7243", "naltrexone", RXNORM)
ORAL_ROUTE = Code("26643006", "Oral route", SNOMED)
FIBROMYALGIA = (
    Code("203082005", "Fibromyalgia", SNOMED),
    Code("M79.7", "Fibromyalgia", ICD10),
)

# Above this daily dose a regimen is beyond every dose studied as low-dose naltrexone in
# fibromyalgia: the FINAL trial gave 6 mg once daily (Bruun et al., Lancet Rheumatol 2024), and
# the dose-finding study tested 0.75-6 mg, with ED95 5.4 mg (Bruun-Plesner et al., Pain Med 2020).
# (The AAFP letter's 1-5 mg range would flag the trial's own dose.) A warning, not an error.
LOW_DOSE_LIMIT_MG = Decimal("6")
LOW_DOSE_LIMIT_SOURCE = (
    "6 mg/day, the highest dose studied as LDN in fibromyalgia (FINAL trial, Bruun 2024)"
)
# A daily dose above this cannot be an LDN dose: 50 mg is the standard full-dose naltrexone tablet
# (opioid and alcohol dependence); a higher figure in an LDN record is a unit or typing error.
MAX_DAILY_DOSE_MG = Decimal("50")
# Compounded LDN doses are written to at most 3 decimals (0.001 mg = 1 microgram).
MAX_DOSE_DECIMALS = 3

FORMS = {
    "capsule": "compounded capsules",
    "liquid": "compounded oral liquid",
}

# timing name -> (FHIR Timing.repeat.when, words for the dosage text); once a day in every case.
TIMINGS: dict[str, tuple[str | None, str]] = {
    "bedtime": ("HS", "once daily at bedtime"),
    "morning": ("MORN", "once daily in the morning"),
    "evening": ("EVE", "once daily in the evening"),
    "once-daily": (None, "once daily"),
}


def medication_text(form: str | None) -> str:
    """What the source says: the form only when it names one."""
    if form is None:
        return "Low-dose naltrexone (LDN)"
    return f"Low-dose naltrexone (LDN), {FORMS[form]} from naltrexone hydrochloride"
