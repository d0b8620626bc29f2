"""The Dashboard tab (admins): the active map's fit figures next to what reviewers found since (how
well each confidence signal ranks their verdicts), reliability, risk–coverage and confidence plots,
the map version each app server runs, and reloading the maps after a refit."""

from __future__ import annotations

import gradio as gr

from assistant.core.errors import CalibratedChatError
from assistant.reviews import queries
from assistant.reviews.servers import server_statuses
from assistant.web import charts, render
from assistant.web.context import WebContext

__all__ = ["DashboardTab"]


def support_summary(maps) -> str:
    """Whether the map's figures come with a range and whether questions are compared with its fitting ones."""
    ranged = [d for d, dm in maps.maps.items() if dm.interval]
    said = (f"Figures come with a {maps.map_for(ranged[0]).range_level:.0%} range ({', '.join(ranged)})."
            if ranged else "This map was fitted without ranges on its figures (refit to add them).")
    if maps.ood:
        return (f"{said} Questions unlike its {len(maps.ood['domains'])} stored fitting questions are flagged "
                "for a human check.")
    return f"{said} It stores no fitting questions, so no question is checked for being unlike them."


class DashboardTab:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def build(self, tab: gr.Tab) -> None:
        """The tab's components and events (inside `tab`)."""
        summary = gr.Markdown(elem_id="cc-dash-summary")
        with gr.Row():
            refresh = gr.Button("Refresh")
            reload_btn = gr.Button("Reload maps", elem_id="cc-reload")
        metrics = gr.Dataframe(headers=charts.DASHBOARD_COLUMNS, interactive=False, wrap=True, elem_id="cc-dash-table")
        live = gr.Dataframe(headers=charts.LIVE_SIGNAL_COLUMNS, interactive=False, wrap=True,
                            label="How well each signal ranks the answers reviewed since the fit (AUROC; 0.5 is chance)",
                            elem_id="cc-dash-signals")
        reliability = gr.Plot(label="Reliability per domain")
        risk_coverage = gr.Plot(label="Risk–coverage of answers reviewed since the fit, one curve per signal")
        histogram = gr.Plot(label="Confidence of answers given since the fit, per domain")
        # Shown as plain text (datatype "str"), as the review queue shows questions: nothing is rendered.
        servers = gr.Dataframe(headers=charts.SERVER_COLUMNS, datatype="str", interactive=False, wrap=True,
                               label="Servers: the calibration map each app server answers with",
                               elem_id="cc-dash-servers")

        outs = [summary, metrics, live, reliability, risk_coverage, histogram, servers]
        private = {"api_visibility": "private"}
        tab.select(self.show, None, outs, **private)
        refresh.click(self.show, None, outs, **private)
        reload_btn.click(self.reload, None, outs, **private)

    def show(self, request: gr.Request):
        """(summary, map table rows, live per-signal AUROC rows, reliability, risk–coverage and histogram
        figures) since the active map's fit, and the servers table."""
        self.ctx.require(request, "admin")
        maps, store, since = self._since_fit()
        reviewed = queries.reviewed(store, since) if store is not None else []  # read once, for all
        answered = queries.answered(store, since) if store is not None else []
        stats = queries.stats_by_domain(reviewed) if store is not None else {}
        return (self.summary(maps, stats), charts.dashboard_rows(maps, stats),
                charts.live_signal_rows(queries.signal_aurocs_by_domain(reviewed)),
                charts.reliability_figure(maps, reviewed), charts.risk_coverage_figure(maps, reviewed),
                charts.histogram_figure(maps, answered), charts.server_rows(self._servers()))

    def _servers(self):
        """Every app server's last report (`assistant.reviews.servers`); none without a store."""
        return server_statuses(self.ctx.store) if self.ctx.store is not None else []

    def _since_fit(self):
        """(the active maps, the store, the time the maps were fitted: what "since the fit" counts from)."""
        maps = self.ctx.assistant.maps
        return maps, self.ctx.store, (maps.fitted_at if maps else None)

    def summary(self, maps, stats: dict) -> str:
        if maps is None:
            return "**No calibration map is active**: every answer is flagged `uncalibrated`. Run `calibrate fit`."
        backend, prompt = self.ctx.assistant.backend.model_id, self.ctx.assistant.prompt.id
        live = stats.get("all")
        return (
            f"**Active map {maps.version}** for model `{maps.model}`, prompt `{maps.prompt}`, "
            f"fitted {render.human_date(maps.fitted_at)}."
            + ("" if maps.matches(backend, prompt) else f" ⚠ It does not match the running model `{backend}`.")
            + f" {support_summary(maps)}"
            + f"\n\nSince the fit: **{live.count if live else 0}** answers reviewed"
            + (f", {charts.num(live.accuracy, percent=True)} correct, expected calibration error "
               f"{charts.num(live.ece)}{render.few_answers(live.count)}." if live and live.count else ".")
        )

    def reload(self, request: gr.Request):
        self.ctx.require(request, "admin")
        version = self.reload_maps()
        gr.Info(f"Active calibration map: {version or 'none'}")
        return self.show(request)

    def reload_maps(self) -> str | None:
        """Re-read the active map version; a broken one keeps the old maps (and says so)."""
        try:
            version = self.ctx.assistant.reload_maps()
        except CalibratedChatError as err:
            raise gr.Error(f"Maps not reloaded (the old ones stay active): {err}") from None
        self.ctx.watch.report()
        return version

    def stats(self) -> dict:
        """Live figures from reviewed answers since the active map's fit, per domain, and each server's map."""
        maps, store, since = self._since_fit()
        servers = [status.to_dict() for status in self._servers()]
        if store is None:
            return {"map_version": maps.version if maps else None, "since": since, "domains": {}, "signal_auroc": {},
                    "servers": servers}
        reviewed = queries.reviewed(store, since)
        return {"map_version": maps.version if maps else None, "since": since,
                "domains": {d: s.__dict__ for d, s in queries.stats_by_domain(reviewed).items()},
                "signal_auroc": queries.signal_aurocs_by_domain(reviewed), "servers": servers}
