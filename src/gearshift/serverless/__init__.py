"""serverless"""
