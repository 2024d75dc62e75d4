"""Studies: custom CNN or transfer learning, with how much data? Curves over training-set
sizes and seeds, with intervals, instead of single runs."""

import streamlit as st

from core.models.choices import model_choices
from core.studies.plan import StudyError, list_studies, load_study
from core.studies.summary import cell_results
from core.ui.memo import shared_memo
from core.ui.serving import withheld
from core.ui.sidebar import page_dataset
from core.ui.studies import cells_table, choose_study, show_new_study_form, show_results
from core.ui.training import job_manager, show_job_progress

st.title("Studies")
st.caption(
    "A study trains every model setting at several training-set sizes, several times (seeds), "
    "on one split: the curves show how accuracy, generalization, overfitting and training time "
    "change with the amount of data, and whether a difference is larger than the seed's."
)
manager = job_manager()
dataset = page_dataset()

studies = list_studies()
with st.expander("New study", expanded=not studies):
    catalogue = shared_memo().get(("model-choices",), model_choices)
    show_new_study_form(str(dataset.root), [entry.name for entry in catalogue], manager)

if not studies:
    st.info("No study yet: define one above (the defaults are the built-in study).")
    st.stop()

study = choose_study(studies)
assert study is not None
job = manager.get(study.study_id)
first = job.snapshot() if job else None


watching = (first is not None and first.active) or study.state == "running"


@st.fragment(run_every=2.0 if watching else None)
def live() -> None:
    """The study's progress and cells, refreshed while its job runs."""
    try:
        current = load_study(study.study_id)
    except StudyError as error:
        st.error(str(error))
        return
    snapshot = job.snapshot() if job else None
    counts = current.counts()
    st.markdown(
        f"**{current.name or current.study_id}** · {current.state} · "
        f"{counts['completed']} of {len(current.cells)} cells completed"
        + (f" · {counts['failed']} failed" if counts["failed"] else "")
        + (f" · {current.message}" if current.message and current.state == "running" else "")
    )
    if snapshot is not None and snapshot.active:
        show_job_progress(snapshot)
        st.button("Cancel the study", key="study_cancel", on_click=job.cancel)
    elif current.state == "running":
        st.info(
            "This study is running in another process (the command line, or a server that "
            "stopped): this view refreshes while its file changes. If that process is gone, "
            "Resume continues it here."
        )
    idle = snapshot is None or not snapshot.active
    resume = idle and current.state != "finished"
    if (
        resume
        and not withheld("resuming a study")
        and st.button("Resume the study", type="primary", key="study_resume")
    ):
        try:
            manager.submit_study(current.study_id)
        except ValueError as error:
            st.error(str(error))
        else:
            st.rerun()
    if snapshot is not None and snapshot.error:
        st.error(f"The study stopped: {snapshot.error}")
    for cell in current.cells:
        if cell.state == "failed" and cell.error:
            st.warning(f"{cell.key} failed: {cell.error}")
    frame = cell_results(current)
    st.dataframe(cells_table(frame, "unseen_scan_accuracy"), hide_index=True, width="stretch")
    if watching and current.state != "running" and (snapshot is None or not snapshot.active):
        st.rerun()  # a full rerun stops this fragment's timer and draws the results


live()
st.subheader("Results")
latest = load_study(study.study_id)
show_results(latest, cell_results(latest))
