"""strategies/processes"""
