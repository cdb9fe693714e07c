"""How an evaluation is run by its paper's protocol: protocol cards, input rules, layer-wise LR decay
and the shared normalisation constants.
"""
