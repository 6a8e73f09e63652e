/* privacy_guard--1.0--1.1.sql -- update an installed 1.0 to 1.1 (assembled from src/updates/1.0--1.1/, in name order) */

\echo Use "ALTER EXTENSION privacy_guard UPDATE TO '1.1'" to load this file. \quit
