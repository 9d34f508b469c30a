"""Batch: price a whole spreadsheet, see what could not be priced, download the results."""

from pathlib import Path

import streamlit as st

from avarn_core import ReadError, app_state, error_frame, read_table, to_csv_bytes, to_xlsx_bytes
from avarn_core.offer import template_frame
from avarn_core.presentation import (
    count_text,
    format_percent,
    md_escape,
    price_table_text,
    rows_text,
)

app_state.require_entry("batch")
service = app_state.service()

st.title("Batch")
st.caption(
    "Prissätt en hel fil på en gång: CSV (med ; eller ,) eller Excel (xlsx). Rubrikerna får stå "
    "som i mallen; extra kolumner som kundnamn och adress följer med orörda."
)
template = template_frame()
left, right = st.columns(2)
left.download_button(
    "Ladda ner mall (CSV)",
    to_csv_bytes(template),
    file_name="avarn_pris_mall.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
    key="batch_template_csv",
)
right.download_button(
    "Ladda ner mall (Excel)",
    to_xlsx_bytes(template),
    file_name="avarn_pris_mall.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    icon=":material/download:",
    on_click="ignore",
    key="batch_template_xlsx",
)

upload = st.file_uploader("Fil att prissätta", type=["csv", "xlsx", "txt"], key="batch_file")
if upload is None:
    st.session_state.pop("batch_done", None)
    st.info("Ladda upp en fil (upp till 100 000 rader) för att prissätta den.")
elif st.session_state.get("batch_done", {}).get("file_id") != upload.file_id:
    # Priced (and logged) once per uploaded file, not on every rerun.
    bar = st.progress(0.0, text="Läser filen …")
    try:
        sheet = read_table(upload.getvalue())
    except ReadError as exc:
        # Remembered too, so a rerun neither logs the same unreadable file again nor hides why.
        st.session_state["batch_done"] = {"file_id": upload.file_id, "error": str(exc)}
        service.log_unreadable(str(exc), source="app-batch", name=upload.name)
    else:
        result = service.quote_sheet(
            sheet,
            source="app-batch",
            progress=lambda done: bar.progress(
                done, text=f"Prissätter … {format_percent(done, 0)}"
            ),
        )
        st.session_state["batch_done"] = {
            "file_id": upload.file_id,
            "name": Path(upload.name).stem,
            "separator": sheet.separator,
            "result": result,
            "shown": price_table_text(result.table),  # formatted once, not on every rerun
        }
    bar.empty()

done = st.session_state.get("batch_done")
if done is not None and "error" in done:
    st.error(md_escape(done["error"]))
elif done is not None:
    result = done["result"]
    cols = st.columns(4)
    cols[0].metric("Rader i filen", count_text(result.n_rows))
    cols[1].metric("Prissatta", count_text(result.n_priced))
    cols[2].metric("Med varning", count_text(result.n_warnings))
    cols[3].metric("Med fel", count_text(result.n_error_rows))
    if result.errors:
        st.error(
            f"{rows_text(result.n_error_rows)} kunde inte prissättas; de står nedan med "
            "rad (som i Excel), kolumn och värde. Övriga rader är prissatta."
        )
        st.dataframe(error_frame(result.errors), hide_index=True, key="batch_errors")
    if result.n_warnings:
        st.warning(
            f"{rows_text(result.n_warnings)} har en varning, t.ex. en stad som modellen "
            "inte känner till; se kolumnen warning."
        )
    st.subheader("Resultat")
    table = result.table
    st.dataframe(
        done["shown"],
        column_config={
            "predicted_price": "Pris",
            "confidence_interval_lower": "Från",
            "confidence_interval_upper": "Till",
        },
        key="batch_table",
    )
    left, right = st.columns(2)
    left.download_button(
        "Ladda ner resultat (CSV)",
        lambda: to_csv_bytes(table, separator=done["separator"]),
        file_name=f"{done['name']}_priser.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        type="primary",
        key="batch_download_csv",
    )
    right.download_button(
        "Ladda ner resultat (Excel)",
        lambda: to_xlsx_bytes(table),
        file_name=f"{done['name']}_priser.xlsx",
        help="Excelfilen skapas när du klickar; 100 000 rader kan ta upp till en halv minut.",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:",
        on_click="ignore",
        key="batch_download_xlsx",
    )
