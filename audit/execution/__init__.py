"""Where the per-class work runs: in this process (`local`) or on Ray actors (`ray`).

Class visualization is the part of an audit that grows with the class count, so it is what
a backend shards: the classes are cut into shards, each shard is visualized by one worker
(which loaded the model once), and the driver concatenates the plain arrays back in class
order. A class's images depend only on (seed, class, restart) and not on which other
images share its batch, so a sharded run gives the same images, bit for bit, as a local one
(tests/test_execution.py checks it through the CLI). Nothing of Ray reaches the data model.
"""
