"""What tests, benchmarks and screenshots share: a synthetic stream with
no training, headless Chromium.
"""
