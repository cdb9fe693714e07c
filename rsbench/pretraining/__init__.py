"""Pretraining a backbone with its paper's objective (``rsbench pretrain``).
"""
