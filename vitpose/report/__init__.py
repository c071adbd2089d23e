"""The report stage's library: the paper's reference numbers, the metrics.json schema, the table model,
its LaTeX and Markdown forms, the Figure 1 Pareto plot and the index page.

Modules (import what you need; this package imports nothing heavy, so stages that only validate their
metrics.json pull in no plotting library):
    reference  load `paper_reference.yaml` (the paper's Tables 1-10 and Figure 1)
    metrics    `vitpose-metrics/1`: validate_metrics, load_metrics, collect_metrics
    tables     rows x columns of (reproduced, paper, difference) cells
    latex, markdown, pareto, index   renderers
    build      build_report: everything into paper_tables/<scale>/, swapped in at once
"""
