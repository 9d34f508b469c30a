"""Offert: price one contract, see why, try what-if, take it to the explanation page."""

import streamlit as st
from pydantic import ValidationError

from avarn_core import INTERVAL_COLUMNS, INTERVAL_LABELS, LABELS, app_state, format_sek
from avarn_core.explain import driver_sentences
from avarn_core.offer import (
    DEFAULT_INPUTS,
    WHAT_IF_INPUTS,
    city_choices,
    comparison_note,
    current_value,
    form_inputs,
    what_if,
)
from avarn_core.presentation import (
    delta_text,
    format_percent,
    interval_text,
    md_escape,
    validation_text,
)
from avarn_core.schema import COUNT_COLUMNS, LOWER_BOUNDS, UPPER_BOUNDS

app_state.require_entry("offert")
KEYS = {
    "antal_sektioner": "offert_sektioner",
    "antal_detektorer": "offert_detektorer",
    "antal_larmdon": "offert_larmdon",
    "dörrhållarmagneter": "offert_dorrhallarmagneter",
}
service = app_state.service()
cities = service.predictor.cities


def remember(quote) -> None:
    st.session_state["offert_quote"] = quote
    st.session_state["offert_explanation"] = service.explain(quote.inputs)
    for key in [k for k in st.session_state if str(k).startswith("whatif_value_")]:
        del st.session_state[key]


@app_state.guarded
def use_what_if(inputs: dict) -> None:
    remember(service.quote(inputs, source="app-single"))
    for column, key in KEYS.items():
        st.session_state[key] = inputs[column]
    st.session_state["offert_ventilation"] = bool(inputs["ventilation"])
    st.session_state["offert_intervall"] = current_value(inputs, "testintervall")
    st.session_state["offert_stad"] = inputs["stad"]  # an unseen city too: see city_choices


st.title("Offert")
st.caption("Årligt pris för provning av brandlarm, exklusive moms.")

with st.form("offert_form", border=True):
    left, right = st.columns(2)
    counts = {
        column: (left if i % 2 == 0 else right).number_input(
            LABELS[column],
            min_value=LOWER_BOUNDS[column],
            max_value=UPPER_BOUNDS[column],
            value=DEFAULT_INPUTS[column],
            step=1,
            key=KEYS[column],
        )
        for i, column in enumerate(COUNT_COLUMNS)
    }
    choices = city_choices(cities, st.session_state.get("offert_stad"))
    city = left.selectbox(
        LABELS["stad"],
        choices,
        index=choices.index(DEFAULT_INPUTS["stad"]) if DEFAULT_INPUTS["stad"] in choices else 0,
        accept_new_options=True,
        placeholder="Välj eller skriv en stad",
        help="Sök i listan. Finns staden inte där kan du skriva den; priset får då en varning.",
        key="offert_stad",
    )
    interval = right.radio(
        LABELS["testintervall"],
        INTERVAL_COLUMNS,
        index=INTERVAL_COLUMNS.index(current_value(DEFAULT_INPUTS, "testintervall")),
        format_func=INTERVAL_LABELS.get,
        horizontal=True,
        key="offert_intervall",
    )
    ventilation = right.toggle(
        "Ventilationsstyrning ska provas",
        value=bool(DEFAULT_INPUTS["ventilation"]),
        key="offert_ventilation",
    )
    submitted = st.form_submit_button("Beräkna pris", type="primary", key="offert_submit")

if submitted:
    inputs = form_inputs(counts, ventilation=ventilation, city=city, interval=interval)
    try:
        remember(service.quote(inputs, source="app-single"))
    except ValidationError as exc:
        st.session_state.pop("offert_quote", None)
        st.error("Priset kunde inte beräknas: " + " ".join(validation_text(exc.errors())))

quote = st.session_state.get("offert_quote")
if quote is None:
    st.info("Fyll i anläggningens uppgifter och tryck på **Beräkna pris**.")
else:
    # The model that made the quote prices its what-ifs and names its interval's level.
    quoted_by = app_state.predictor_of(quote.model_version)
    level = None if quoted_by is None else quoted_by.metadata.get("level")
    quoted_by = quoted_by or service.predictor
    price_col, interval_col = st.columns(2)
    price_col.metric("Pris per år (exkl. moms)", format_sek(quote.predicted_price))
    interval_col.metric(
        "Prisintervall" + ("" if level is None else f" ({format_percent(level, 0)})"),
        interval_text(quote.confidence_interval_lower, quote.confidence_interval_upper),
        help="Priset för liknande avtal hamnar inom intervallet i så här stor andel av fallen.",
    )
    if quote.warning:
        st.warning(md_escape(quote.warning))
    st.markdown("**Det här påverkar priset mest**")
    sentences = driver_sentences(st.session_state["offert_explanation"], n=3)
    st.markdown("\n".join(f"- {md_escape(sentence)}" for sentence in sentences))
    st.caption(f"Prediktions-id: `{quote.prediction_id}` · Modellversion: {quote.model_version}")
    if st.button("Visa förklaringen", icon=":material/insights:", key="offert_to_explanation"):
        st.session_state["explain_quote"] = quote
        st.switch_page("pages/forklaring.py")

    st.divider()
    st.subheader("Tänk om …")
    note = comparison_note(quote.model_version, quoted_by.version, service.predictor.version)
    if note:
        st.info(note)
    name = st.selectbox(
        "Ändra en uppgift", WHAT_IF_INPUTS, format_func=LABELS.get, key="whatif_input"
    )
    now = current_value(quote.inputs, name)
    key = f"whatif_value_{WHAT_IF_INPUTS.index(name)}"
    if name in COUNT_COLUMNS:
        value = st.number_input(
            f"Nytt värde: {LABELS[name]}",
            min_value=LOWER_BOUNDS[name],
            max_value=UPPER_BOUNDS[name],
            value=int(now),
            step=1,
            key=key,
        )
    elif name == "ventilation":
        value = int(st.toggle("Ventilationsstyrning ska provas", value=bool(now), key=key))
    elif name == "stad":
        choices = city_choices(quoted_by.cities, st.session_state.get(key))
        value = st.selectbox(
            "Ny stad",
            choices,
            index=choices.index(now) if now in choices else None,
            accept_new_options=True,
            key=key,
        )
    else:
        value = st.radio(
            "Nytt testintervall",
            INTERVAL_COLUMNS,
            index=INTERVAL_COLUMNS.index(now),
            format_func=INTERVAL_LABELS.get,
            horizontal=True,
            key=key,
        )
    alternative = None
    try:
        if value is not None:  # a city must be chosen first
            alternative = what_if(quoted_by, quote, name, value)
    except ValidationError as exc:
        st.error(" ".join(validation_text(exc.errors())))
    if alternative is not None:
        st.metric(
            "Nytt pris per år",
            format_sek(alternative.quote.predicted_price),
            delta=delta_text(alternative.difference),
            delta_color="off",
            delta_arrow="off" if alternative.difference == 0 else "auto",
        )
        if alternative.quote.warning:
            st.warning(md_escape(alternative.quote.warning))
        st.caption(
            f"Jämfört med offertens {format_sek(quote.predicted_price)} (modellversion "
            f"{alternative.quote.model_version}). Jämförelsen loggas inte; använd den som offert "
            "för att spara den."
        )
        st.button(
            "Använd som offert",
            on_click=use_what_if,
            args=(alternative.quote.inputs,),
            disabled=alternative.difference == 0 and value == now,
            key="whatif_use",
        )
