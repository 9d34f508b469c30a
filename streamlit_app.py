"""Avarn Pris: the app for pricing annual fire-alarm testing contracts.

Run with `streamlit run streamlit_app.py`. On a fresh machine the default model is trained
from data/training_data.csv at first start (a few seconds, with a progress bar).
"""

import logging

import streamlit as st

from avarn_core import ModelFormatError, app_state
from avarn_core.presentation import md_escape, model_facts

logger = logging.getLogger("avarn_core.app")

st.set_page_config(page_title="Avarn Pris", page_icon=":material/local_fire_department:")
app_state.mark_entry_ran()
logging.basicConfig(level=app_state.settings().log_level)


def offer_retraining() -> None:
    plan = app_state.retraining_plan()
    st.warning(
        f"Prismodellen {plan.version} sparades av en annan version av Avarn Pris och kan inte "
        "läsas av den här. Den behöver tränas om, vilket tar någon minut. Den gamla versionen "
        "sparas kvar."
    )
    if plan.data is None:
        st.error(
            "Träningsdata saknas (data/training_data.csv), så modellen kan inte tränas om här. "
            "Be den som förvaltar Avarn Pris att träna om den med `avarn train`."
        )
        return
    source = "samma data som förut" if plan.same_data else "standarddata"
    st.caption(f"Tränas på {md_escape(plan.data)} ({source}).")
    if not st.button("Träna om prismodellen", type="primary", key="retrain_model"):
        return
    bar = st.progress(0.0, text="Tränar om prismodellen …")
    notes: list[str] = []
    try:
        app_state.retrain(
            plan, lambda message, fraction: bar.progress(fraction, text=message), notes.append
        )
    except Exception:
        logger.exception("Retraining the model failed")
        st.error("Prismodellen kunde inte tränas om. Se serverns logg.")
        return
    bar.empty()
    app_state.keep_notes(notes)
    st.rerun()


if app_state.needs_training():
    bar = st.progress(0.0, text="Första start: tränar prismodellen …")
    notes: list[str] = []
    try:
        app_state.ensure_model(
            lambda message, fraction: bar.progress(fraction, text=message), warn=notes.append
        )
    except Exception:
        logger.exception("Training the default model failed")
        st.error(
            "Prismodellen kunde inte tränas. Kontrollera att data/training_data.csv finns och "
            "se serverns logg."
        )
        st.stop()
    bar.empty()
    app_state.keep_notes(notes)  # e.g. MLflow tracking failed: shown in the sidebar

try:
    metadata = app_state.metadata()
except ModelFormatError as exc:
    # Saved by an older Avarn Pris (or LightGBM): offer to retrain, keeping the old version.
    logger.warning("The active model cannot be read here: %s", exc)
    offer_retraining()
    st.stop()
except Exception:
    logger.exception("Loading the active model failed")
    st.error(
        "Den aktiva prismodellen kunde inte laddas. Träna om den med "
        "`avarn train --data data/training_data.csv` och se serverns logg."
    )
    st.stop()

with st.sidebar:
    st.markdown("**Aktiv prismodell**")
    for label, value in model_facts(metadata):
        st.caption(f"{label}: **{md_escape(value)}**")
    for note in app_state.notes():
        st.warning(md_escape(note))

pages = {
    "offert": st.Page("pages/offert.py", title="Offert", icon=":material/request_quote:"),
    "batch": st.Page("pages/batch.py", title="Batch", icon=":material/table_view:"),
    "forklaring": st.Page("pages/forklaring.py", title="Förklaring", icon=":material/insights:"),
    "modellprestanda": st.Page(
        "pages/modellprestanda.py", title="Modellprestanda", icon=":material/monitoring:"
    ),
}
page = st.navigation(list(pages.values()))
wanted = st.query_params.pop("sida", None)  # a deep link that came through here
if wanted in pages and pages[wanted] is not page:
    st.switch_page(pages[wanted])
try:
    page.run()
except Exception:
    # Users see a short Swedish message; the traceback goes to the server's log.
    logger.exception("Page %s failed", page.title)
    st.error(app_state.ERROR_MESSAGE)
