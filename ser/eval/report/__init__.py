"""The RESULTS.md report of scored experiments (ser.bin.report), one module per part.

- layout: ReportInputs (what a report is made from) and Layout (its rows, columns and cells)
- markdown: number formats, tables and links shared by every section
- header, protocol, environment: the title, how the numbers were obtained, the software and runs
- score_tables: UAR and WA per model and condition (paper 1's Table 1 layout), per fold, per class
- models_table: features, augmentation, epochs and training time of every model
- grid, noise_table, attack_table: the models x augmentations tables of paper 1's Tables 2 and 3
- bar_charts, confusions: the figures (paper 1's Figure 2 layout; confusion matrices) and their links
- synthetic: the diffusion models and their samples (paper 2)
- document: `render`, the sections in order
"""
