"""Discovery: surface what drives each class without a concept list, and test it causally.

contributions.py  feature x gradient of the class logit at the last feature map
patterns.py       non-negative factorization of those contributions into a few patterns
regions.py        where a pattern sits in an image: alpha masks, cutouts, highlights
maximize.py       a picture of each pattern, made by the class-visualization engine
run.py            per class: patterns, cutouts, the insertion and removal tests, levels
write.py          report files and the `discovered` entries of audit.json
promote.py        `audit concept from-pattern`: a discovered pattern -> a concept folder
settings.py       the `discover:` config section
"""
