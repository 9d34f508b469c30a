"""Modellprestanda: how right the model has been, from the prediction log."""

import streamlit as st

from avarn_core import app_state, plots
from avarn_core.performance import (
    accuracy_view,
    edited_actuals,
    editor_frame,
    editor_key,
    error_table,
    merge_edits,
    performance_report,
    read_actuals,
    version_table,
)
from avarn_core.presentation import actual_prices_text, count_text, format_percent, md_escape

app_state.require_entry("modellprestanda")
PERIODS = {30: "Senaste 30 dagarna", 90: "Senaste 90 dagarna", 365: "Senaste året", None: "Allt"}

metadata = app_state.metadata()
log = app_state.prediction_log()


def recorded(result) -> None:
    """Keep what record_actuals did for the next run, and rerun so every figure includes it."""
    app_state.clear_log_cache()
    st.session_state["actuals_result"] = result
    st.rerun()


@app_state.guarded
def keep_edits(key: str, ids: list[str]) -> None:
    """The editor's on_change: its edits by id, on the rows the user saw (see merge_edits)."""
    edits = st.session_state.get(key, {}).get("edited_rows", {})
    pending = st.session_state.get("actuals_pending")
    st.session_state["actuals_pending"] = merge_edits(pending, ids, edits)


def show_recorded() -> None:
    result = st.session_state.pop("actuals_result", None)
    if result is None:
        return
    if result.recorded:
        st.success(f"Registrerade {actual_prices_text(result.recorded)}.")
    for pid in result.unknown_ids[:20]:
        st.warning(f"Okänt prediktions-id, inte registrerat: {md_escape(pid)}")
    for message in result.errors[:20]:
        st.warning(md_escape(message))


st.title("Modellprestanda")
st.caption(
    "Hur rätt prismodellen har haft, räknat ur prediktionsloggen: varje offert, varje fel och "
    "de faktiska priser som avtalen fick."
)
show_recorded()
days = st.selectbox("Period", list(PERIODS), index=1, format_func=PERIODS.get, key="perf_days")
quotes, errors = app_state.log_frames(days)
report = performance_report(
    quotes,
    errors,
    metadata=metadata,
    profile=app_state.training_profile(),
    settings=app_state.settings(),
)
if not report.has_quotes:
    st.info(
        ("Inga offerter under perioden." if log.count() else "Inga offerter har loggats ännu.")
        + " Prissätt en offert på sidan Offert eller ladda upp en fil på sidan Batch; sedan "
        "visas volym, felandel och drift här."
    )
    st.page_link("pages/offert.py", label="Till Offert", icon=":material/request_quote:")
    st.page_link("pages/batch.py", label="Till Batch", icon=":material/table_view:")
else:
    active = report.health  # the active version's figures, as the alerts judge them
    cols = st.columns(5)
    cols[0].metric("Offerter", count_text(report.n_quotes), help="Alla modellversioner.")
    rate = report.health.error_rate
    cols[1].metric(
        "Felandel", format_percent(rate), help="Andel rader/förfrågningar med fel, alla versioner."
    )
    version_help = f"Offerter från den aktiva modellen {report.version}."
    cols[2].metric("Med faktiskt pris", count_text(active.n_actuals), help=version_help)
    cols[3].metric("Medelfel (MAPE)", format_percent(active.mape), help=version_help)
    cols[4].metric("Täckning", format_percent(active.coverage), help=version_help)
    st.caption(md_escape(report.scope_text()))
    for alert in report.alerts():
        st.error(md_escape(alert))
    for warning in report.drift_warnings():
        st.warning(md_escape(warning))

    volume_tab, accuracy_tab, drift_tab, actuals_tab = st.tabs(
        ["Volym och fel", "Träffsäkerhet", "Drift", "Faktiska priser"]
    )
    with volume_tab:
        st.subheader("Offerter per " + ("dag" if report.volume_freq == "D" else "vecka"))
        st.altair_chart(plots.volume_chart(report.volume))
        st.subheader("Fel per orsak")
        if report.errors_by_reason.empty:
            st.info("Inga fel har loggats.")
        else:
            st.dataframe(error_table(report.errors_by_reason), hide_index=True)

    with accuracy_tab:
        for note in report.accuracy_notes():
            st.info(md_escape(note))
        if not report.has_actuals:
            st.info(
                "Inga faktiska priser ännu: ladda upp dem under fliken **Faktiska priser** "
                "(en CSV med prediction_id och faktiskt_pris) eller skriv in dem i tabellen där."
            )
        else:
            st.caption(
                "Medelfel = genomsnittlig avvikelse i procent mellan offererat och faktiskt pris; "
                "täckning = andel där prisintervallet höll det faktiska priset."
            )
            st.subheader("Per modellversion")
            table_col, chart_col = st.columns(2)
            table_col.dataframe(version_table(report.by_version, report.version), hide_index=True)
            with chart_col:
                st.altair_chart(plots.accuracy_by_group_chart(report.by_version, "model_version"))
            chosen = st.selectbox(
                "Visa träffsäkerheten för",
                [report.version, *report.other_versions, None],
                format_func=lambda v: (
                    "alla versioner" if v is None else f"{v} (aktiv)" if v == report.version else v
                ),
                key="perf_version",
            )
            view = report.active if chosen == report.version else accuracy_view(quotes, chosen)
            if not view.n_actuals:
                st.info(
                    f"Offerterna från {md_escape(chosen)} har inga faktiska priser ännu under "
                    "perioden."
                )
            else:
                st.caption(f"{count_text(view.n_actuals)} offerter har ett faktiskt pris.")
                st.subheader("Medelfel och täckning per vecka")
                level = metadata.get("level") if chosen == report.version else None
                st.altair_chart(plots.accuracy_over_time_chart(view.by_week, level))
                st.subheader("Offererat mot faktiskt pris")
                if view.n_pairs > len(view.pairs):
                    st.caption(
                        f"Visar ett slumpvis urval om {count_text(len(view.pairs))} av "
                        f"{count_text(view.n_pairs)}."
                    )
                st.altair_chart(plots.scatter_chart(view.pairs))
                city_col, interval_col = st.columns(2)
                with city_col:
                    st.subheader("Avvikelse per stad")
                    st.altair_chart(plots.residuals_chart(view.by_city, "stad", "Stad"))
                with interval_col:
                    st.subheader("Avvikelse per testintervall")
                    st.altair_chart(
                        plots.residuals_chart(view.by_interval, "interval", "Testintervall")
                    )

    with drift_tab:
        st.caption(
            "Skiljer sig den aktiva modellens offerter från dess träningsdata? Måttet är PSI "
            "utöver slumpen: hur mycket mer offerterna skiljer sig än vad slumpen ensam ger vid "
            f"så här många offerter. Under {report.psi_warning_text} är normalt, från "
            f"{report.psi_warning_text} en varning och från {report.psi_alert_text} ett larm: "
            "modellen bör då tränas om."
        )
        for note in report.drift_notes():
            st.info(md_escape(note))
        if report.drift_judged:
            st.altair_chart(
                plots.drift_chart(report.health.drift, report.psi_warning, report.psi_alert)
            )
            unseen = report.health.drift.set_index("input")["unseen_share"].get("stad")
            st.caption(
                f"Andel offerter i städer som modellen inte känner till: {format_percent(unseen)}"
            )

    with actuals_tab:
        st.markdown(
            "Ladda upp de priser avtalen faktiskt fick: en CSV med kolumnerna `prediction_id` "
            "och `faktiskt_pris` (och gärna `datum`, ÅÅÅÅ-MM-DD)."
        )
        upload = st.file_uploader(
            "Fil med faktiska priser", type=["csv", "txt"], key="actuals_file"
        )
        if upload is not None and st.session_state.get("actuals_file_done") != upload.file_id:
            st.session_state["actuals_file_done"] = upload.file_id
            st.session_state.pop("actuals_file_error", None)
            try:
                recorded(log.record_actuals(read_actuals(upload.getvalue())))
            except ValueError as exc:
                st.session_state["actuals_file_error"] = str(exc)  # shown until another file
        if upload is not None and st.session_state.get("actuals_file_error"):
            st.error(md_escape(st.session_state["actuals_file_error"]))
        st.markdown("**Eller skriv in dem** (de senaste offerterna, nyast först):")
        st.caption(
            "Skriv det avtalade priset i hela kronor i kolumnen **Nytt faktiskt pris** och tryck "
            "på Spara. Ett registrerat pris rättas genom att skriva ett nytt; det kan inte tas "
            "bort här."
        )
        generation = st.session_state.get("actuals_editor_generation", 0)
        shown = editor_frame(quotes, pending=st.session_state.get("actuals_pending"))
        key = editor_key(shown, generation)
        edited = st.data_editor(
            shown,
            disabled=["created_at", "stad", "offererat", "registrerat"],
            # The new price beside the quoted one, so that a typo stands out.
            column_order=["offererat", "faktiskt_pris", "registrerat", "stad", "created_at"],
            column_config={
                "_index": st.column_config.TextColumn(
                    "Prediktions-id", width="medium", disabled=True
                ),
                "offererat": st.column_config.TextColumn("Offererat pris", width=110),
                "faktiskt_pris": st.column_config.NumberColumn(
                    "Nytt faktiskt pris", width=140, min_value=1, step=1, format="%d kr"
                ),
                "registrerat": st.column_config.TextColumn("Registrerat faktiskt pris"),
                "stad": "Stad",
                "created_at": st.column_config.DatetimeColumn("Tid", format="YYYY-MM-DD HH:mm"),
            },
            placeholder="",
            key=key,
            on_change=keep_edits,
            args=(key, list(shown.index)),
        )
        changes = edited_actuals(quotes, edited)
        st.session_state["actuals_pending"] = changes  # by id: survives new quotes shifting rows
        if st.button(
            f"Spara {actual_prices_text(len(changes))}",
            disabled=changes.empty,
            type="primary",
            key="actuals_save",
        ):
            result = log.record_actuals(changes)
            st.session_state.pop("actuals_pending", None)
            st.session_state["actuals_editor_generation"] = generation + 1  # an empty editor
            recorded(result)
