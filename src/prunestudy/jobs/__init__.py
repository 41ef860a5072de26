"""The body of every workflow job, one module per stage; ``prunestudy.cli`` parses and dispatches to them.

Each job takes the config slices its rule passes (the rule's ``params:``) as plain values and never reads
the whole config. :mod:`prunestudy.jobs.common` holds what they share: the runtime and data of a job,
the one function that writes a trained network's record, and the one that builds every resume key.
The analysis jobs never import torch.
"""
