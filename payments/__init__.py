"""Paid reads over x402: the article as Markdown and its research brief, sold per request.

    payments/x402.py     [x402] settings -> the SDK's resource server, facilitator client and routes
    payments/paywall.py  the SDK's payment middleware around the site's paid paths, a 503 when the
                         facilitator or the chain is down, and the record of each payment it settles

The protocol is the official `x402` SDK's (server, facilitator, client); nothing here re-implements it.
Income is booked by wallet/ (wallet/reads.py): the settled transfer is a token transfer to the wallet,
counted by the tip scanner at wallet.confirmations as income:reads:<kind> and reversed on a reorg.
"""
