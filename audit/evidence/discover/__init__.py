"""Discovery: surface what drives each class without a concept list, and test it causally.

contributions.py  feature x gradient of the class logit at the last feature map
patterns.py       non-negative factorization of those contributions into a few patterns
regions.py        where a pattern sits in an image: alpha masks, cutouts, highlights
maximize.py       a picture of each pattern, made by the class-visualization engine
run.py            per class: patterns, cutouts, the insertion and removal tests, levels
stage.py          the stage shared by `audit run` and `audit discover`

Its config section is audit/config/discover.py; its report files audit/report/discovered.py;
its commands audit/flows/discover.py and audit/flows/concept.py.
"""
