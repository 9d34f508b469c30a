"""Förklaring: why a quote's price is what it is, in kronor and in words a customer understands."""

import streamlit as st

from avarn_core import (
    app_state,
    driver_sentences,
    format_sek,
    plots,
    waterfall_frame,
)
from avarn_core.offer import customer_summary, quote_from_log
from avarn_core.presentation import (
    importance_from_metadata,
    md_escape,
    waterfall_table,
)

app_state.require_entry("forklaring")
st.title("Förklaring")
st.caption("Från ett typiskt avtal till offertens pris, krona för krona.")

with st.form("explain_lookup", border=False):
    typed = st.text_input(
        "Förklara en loggad offert",
        placeholder="Prediktions-id, t.ex. 3f2a9c…",
        help="Id:t står under priset på sidan Offert och i kolumnen prediction_id i batchfilen.",
        key="explain_id",
    )
    if st.form_submit_button("Hämta offerten", key="explain_fetch") and typed.strip():
        row = app_state.prediction_log().quote(typed.strip())
        if row is None:
            st.warning("Det finns ingen offert med det prediktions-id:t i loggen.")
        else:
            st.session_state["explain_quote"] = quote_from_log(row)

quote = st.session_state.get("explain_quote")
if quote is None:
    st.info(
        "Prissätt en offert på sidan Offert och tryck på **Visa förklaringen**, eller hämta en "
        "loggad offert med dess prediktions-id ovan."
    )
    st.page_link("pages/offert.py", label="Till Offert", icon=":material/request_quote:")
else:
    predictor = app_state.predictor_of(quote.model_version)
    if predictor is None:
        predictor = app_state.predictor()
        st.warning(
            f"Modellversion {quote.model_version}, som gjorde offerten, kan inte längre laddas. "
            f"Förklaringen använder den aktiva modellen {predictor.version}; priset kan skilja."
        )
    explanation = predictor.explain(quote.inputs)
    steps = waterfall_frame(explanation)
    price = int(steps["amount"].iloc[-1])

    st.metric("Pris per år (exkl. moms)", format_sek(price))
    st.caption(
        f"Offert `{quote.prediction_id}` · {md_escape(quote.inputs['stad'])} · "
        f"modellversion {quote.model_version}"
    )
    if quote.warning:
        st.warning(md_escape(quote.warning))
    st.altair_chart(plots.waterfall_chart(steps))
    with st.expander("Stegen i siffror"):
        st.dataframe(waterfall_table(steps), hide_index=True, key="explain_steps")
    base, adjustments = int(steps["amount"].iloc[0]), int(steps["amount"].iloc[1:-1].sum())
    st.caption(
        f"Typiskt avtal {format_sek(base)} + justeringar "
        f"{format_sek(adjustments, sign=True)} = {format_sek(base + adjustments)}"
    )

    st.subheader("Att berätta för kunden")
    sentences = driver_sentences(explanation, n=3)
    st.markdown("\n".join(f"- {md_escape(sentence)}" for sentence in sentences))
    summary = customer_summary(quote, explanation)
    st.download_button(
        "Ladda ner sammanfattning för kunden",
        summary.encode("utf-8"),
        file_name=f"offert_{quote.prediction_id[:8]}.txt",
        mime="text/plain",
        icon=":material/download:",
        on_click="ignore",
        key="explain_summary",
    )
    with st.expander("Visa sammanfattningen"):
        st.text(summary)

st.subheader("Vad styr priserna generellt")
st.caption("Hur mycket varje uppgift i genomsnitt flyttar priset, över modellens träningsdata.")
importance = importance_from_metadata(app_state.metadata())
if importance.empty:
    st.info("Modellen har ingen sparad översikt; träna om den för att se den här.")
else:
    st.altair_chart(plots.importance_chart(importance))
