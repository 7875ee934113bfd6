"""The panel's stylesheet: every colour comes from JupyterLab's theme variables, so the panel
follows the light and dark themes; only the status badges (``lineage.status_colour``) have
colours of their own, the same in every theme.

It is shown once per panel, scoped to ``.tc-browser``, through an HTML widget (no front-end
build). Code is highlighted by pygments with CSS classes mapped here to the editor's
``--jp-mirror-editor-*`` colours; comments and decorators use the secondary text colour,
because the editor's own comment colour is below a 4.5:1 contrast in both themes."""

from __future__ import annotations

#: pygments token classes -> the editor colour variable they take
_CODE_COLOURS = {
    "k kc kd kn kp kr kt ow": "keyword",
    "s s1 s2 sa sb sc sd se sh si sr ss sx": "string",
    "m mb mf mh mi mo il": "number",
    "o": "operator",
    "nf fm nc nn": "def",
    "nb bp": "builtin",
    "na": "attribute",
}

_CSS = """
.tc-browser { background: var(--jp-layout-color0); color: var(--jp-content-font-color1);
  border: 1px solid var(--jp-border-color2); padding: 8px; box-sizing: border-box; }
.tc-browser .tc-muted { color: var(--jp-content-font-color2); }
.tc-browser .tc-mono, .tc-browser code { font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size); color: inherit; background: none; }
.tc-browser .tc-header-line { display: flex; flex-wrap: wrap; gap: 4px 18px;
  align-items: baseline; }
.tc-browser .tc-message-line { padding: 4px 0; }
.tc-browser .tc-message-error { color: var(--jp-error-color1); }

/* the table: a fixed-height scrolling box, so the detail below it stays close */
.tc-browser .tc-table-scroll { max-height: 340px; overflow: auto; }
.tc-browser .tc-run-table { min-width: 640px; }
.tc-browser .tc-run-table-header { border-bottom: 2px solid var(--jp-border-color1);
  position: sticky; top: 0; z-index: 1; background: var(--jp-layout-color0); }
.tc-browser .tc-run-row { border-bottom: 1px solid var(--jp-border-color2); min-height: 30px; }
.tc-browser .tc-run-row.tc-selected { background: var(--jp-layout-color2); }
.tc-browser .tc-run-row.tc-selected .tc-run-select { font-weight: bold;
  outline: 2px solid var(--jp-brand-color1); outline-offset: -2px; }
.tc-browser .tc-cell .widget-html-content { white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; line-height: 28px; }
.tc-browser .tc-sort-button, .tc-browser .tc-run-select, .tc-browser .tc-col-title {
  padding: 0 6px; }
.tc-browser .tc-col-title .widget-html-content { font-weight: bold; line-height: 28px;
  white-space: nowrap; }
.tc-browser .tc-sort-button { font-weight: bold; background: transparent; }
.tc-browser .tc-error-cell .widget-html-content { white-space: normal; line-height: 18px;
  padding: 4px 0; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.tc-browser .widget-button, .tc-browser .jupyter-button { flex: 0 0 auto; }

/* the detail */
.tc-browser .tc-detail { border-top: 2px solid var(--jp-border-color1); padding-top: 6px; }
.tc-browser .tc-detail-actions { flex-wrap: wrap; gap: 4px; }
.tc-browser .tc-action-message .widget-html-content, .tc-browser .tc-delete-text
  .widget-html-content { white-space: normal; line-height: 18px; }
.tc-browser .tc-copy-id { height: var(--jp-widgets-inline-height); width: auto; }
.tc-browser .tc-detail-tabs .lm-TabBar-content { flex-wrap: wrap; }
.tc-browser .tc-detail-tabs .lm-TabBar-tab { flex: 0 0 auto !important; min-width: max-content;
  max-width: none; }
/* ipywidgets greys inactive tab titles below 4.5:1 */
.tc-browser .tc-detail-tabs .lm-TabBar-tab, .tc-browser .tc-detail-tabs .lm-TabBar-tabLabel {
  color: var(--jp-ui-font-color1) !important; }
.tc-browser .tc-detail-tabs .lm-TabBar-tabLabel { overflow: visible; text-overflow: clip; }
.tc-browser .tc-detail-tabs .lm-TabBar { min-height: max-content; }
.tc-browser .tc-table { border-collapse: collapse; }
.tc-browser .tc-table td, .tc-browser .tc-table th { padding: 2px 8px; text-align: left;
  vertical-align: top; border-bottom: 1px solid var(--jp-border-color2);
  overflow-wrap: anywhere; }
.tc-browser .tc-table td:first-child { white-space: nowrap; overflow-wrap: normal; }
.tc-browser .tc-code, .tc-browser .tc-printed { font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size); background: var(--jp-layout-color0);
  color: var(--jp-mirror-editor-variable-color); border: 1px solid var(--jp-border-color2);
  padding: 8px; overflow: auto; max-height: 420px; margin: 0; }
.tc-browser .tc-code .c, .tc-browser .tc-code .c1, .tc-browser .tc-code .cm,
.tc-browser .tc-code .ch, .tc-browser .tc-code .cs, .tc-browser .tc-code .cp,
.tc-browser .tc-code .cpf { color: var(--jp-content-font-color2); font-style: italic; }
.tc-browser .tc-code .nd { color: var(--jp-content-font-color2); }
.tc-browser .tc-stderr { color: var(--jp-error-color1); }
.tc-browser .tc-error-line { font-family: var(--jp-code-font-family); font-weight: bold;
  font-size: var(--jp-code-font-size); padding: 6px 8px; margin: 4px 0;
  background: var(--jp-rendermime-error-background); color: var(--jp-content-font-color1);
  white-space: pre-wrap; overflow-wrap: anywhere; }
.tc-browser .tc-traceback { font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size); background: var(--jp-layout-color1);
  color: var(--jp-content-font-color1); border: 1px solid var(--jp-border-color2);
  padding: 8px; overflow: auto; max-height: 360px; margin: 0; }
.tc-browser .tc-thumbnail { max-width: 320px; max-height: 200px;
  border: 1px solid var(--jp-border-color2); background: white; }
.tc-browser .tc-lineage-svg .tc-lineage-edge-label { fill: var(--jp-content-font-color1);
  stroke: var(--jp-layout-color0); }
.tc-browser .tc-lineage-svg .tc-lineage-edges { stroke: var(--jp-content-font-color2); }
.tc-browser .tc-lineage-svg .tc-lineage-arrow { fill: var(--jp-content-font-color2); }
"""


def stylesheet() -> str:
    """The ``<style>`` element of the panel."""
    rules = [
        f".tc-browser .tc-code .{' , .tc-browser .tc-code .'.join(classes.split())} "
        f"{{ color: var(--jp-mirror-editor-{colour}-color); }}"
        for classes, colour in _CODE_COLOURS.items()
    ]
    return "<style>" + _CSS + "\n".join(rules) + "</style>"
